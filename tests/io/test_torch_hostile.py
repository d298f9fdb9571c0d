"""Hostile ``torch.save`` files: each is built here, byte by byte, and must end as one MinicnnError
line naming the file, within seconds and a bounded amount of memory (the command line: exit 2).

The classes: a pickle that changes a storage's size after its tensor was checked (once an
out-of-bounds read: a crash, or heap bytes loaded as weights), containers nested two million deep
(once a crash in C hashing), memory bombs from small files (a huge memo index, a message that
formats a megabyte string a million times, stride-0 expansions, tensors that read one storage many
times, a deflated pickle that lies about its size), parser differentials (two zip entries of one
name, overlapping entries, a storage larger than its entry) and terminal escape codes in names.
The readers' other half, the bounded pickle interpreter, is checked against Python's own pickle.
"""

from __future__ import annotations

import json
import pickle
import struct
import subprocess
import sys

import hostile_torch as ht
import numpy as np
import pytest
from support import oracle

from minicnn.errors import MinicnnError, quote
from minicnn.io import safe_pickle
from minicnn.io.torch_pickle import TorchFile

W = ht.text("features.0.weight")
FLOATS = np.arange(1000, dtype="<f4").tobytes()  # storage "0" of most files: 1000 floats


def _vgg(bias_ops: bytes, after: bytes = b"") -> bytes:
    """A complete features-only VGG state dict (one 1x1 convolution, 4 channels) whose weight is
    storage "0" and whose bias is ``bias_ops``: a file the old reader read all the way."""
    weight = ht.tensor(ht.storage("0", 4), 0, (4, 1, 1, 1), (1, 1, 1, 1))
    return ht.state_dict([(W, weight), (ht.text("features.0.bias"), bias_ops)], after)


def _build_shrinks_storage(path):
    """The bias is checked against storage "1" as declared (10^9 elements, stride 3 * 10^8), then
    BUILD {"numel": 2} (memo 0) makes the record agree with its 8-byte entry: the old reader then
    read 1.2 GB past a 2-element buffer (SIGSEGV)."""
    bias = ht.tensor(ht.storage("1", 10**9) + b"q\x00", 0, (4,), (300_000_000,))
    after = b"h\x00}" + ht.text("numel") + ht.integer(2) + b"sb0"  # BUILD, then POP
    return ht.torch_zip(path, _vgg(bias, after), {"0": FLOATS[:16], "1": FLOATS[:8]})


def _build_on_storage(path):
    """The same BUILD on a storage whose entry is as large as declared: refused as such."""
    bias = ht.tensor(ht.storage("1", 4) + b"q\x00", 0, (4,), (1,))
    after = b"h\x00}" + ht.text("numel") + ht.integer(2) + b"sb0"
    return ht.torch_zip(path, _vgg(bias, after), {"0": FLOATS[:16], "1": FLOATS[:16]})


def _deep_tuple_key(path):
    key = b")" + b"\x85" * 2_000_000  # () then TUPLE1 two million times
    return ht.torch_zip(path, ht.state_dict([(key, ht.integer(1))]), {})


def _repeated_string(path):
    """A 1 MB string memoized once, then a persistent id of 150,000 references to it (150 GB as
    text: the old reader's message formatting ran out of memory)."""
    pid = b"(" + ht.text("x" * 1_000_000) + b"q\x00" + b"h\x00" * 150_000 + b"tQ"
    return ht.torch_zip(path, ht.state_dict([(W, pid)]), {})


def _long_binput(path):
    return ht.torch_zip(path, b"\x80\x02Nr\xff\xff\xff\x0f.", {})


def _stride_zero(path):
    items = [(W, ht.tensor(ht.storage("0", 1), 0, (20000, 20000), (0, 0)))]
    return ht.torch_zip(path, ht.state_dict(items), {"0": FLOATS[:4]})


def _shared_storage(path):
    """300 tensors, each all of one 4000-byte storage: 1.2 MB of tensors from a 50 KB file."""
    items = [(ht.text(f"t{i}"), ht.tensor(ht.storage("0", 1000), 0, (1000,), (1,))) for i in range(300)]
    return ht.torch_zip(path, ht.state_dict(items), {"0": FLOATS})


def _deflated_lies(path):
    """data.pkl declares 700 bytes and inflates to 256 MiB."""
    return ht.deflated_pickle_zip(path, (bytes(1 << 20) for _ in range(256)), declared=700, crc=0)


def _deflated_huge(path):
    return ht.deflated_pickle_zip(path, [b"\x80\x02N."], declared=1_500_000_000, crc=0)


def _duplicate_entry(path):
    """Two archive/data/1 (the bias): torch.load reads the first (ones), zipfile the last (zeros)."""
    bias = ht.tensor(ht.storage("1", 4), 0, (4,), (1,))
    extra = [(f"{ht.ARCHIVE}/data/1", bytes(16))]
    return ht.torch_zip(path, _vgg(bias), {"0": FLOATS[:16], "1": np.ones(4, "<f4").tobytes()}, extra)


def _overlapping(path):
    """The bias's storage "1" declares 20 floats; its entry's sizes are stretched over entry data/2
    after it, whose local header and bytes the old reader loaded as weights."""
    bias = ht.tensor(ht.storage("1", 20), 0, (4,), (5,))
    ht.torch_zip(path, _vgg(bias), {"0": FLOATS[:16], "1": FLOATS[:16], "2": FLOATS[16:32]})
    path.write_bytes(ht.set_sizes(path.read_bytes(), f"{ht.ARCHIVE}/data/1", 80, 80))
    return path


def _storage_beyond_entry(path):
    items = [(W, ht.tensor(ht.storage("0", 1000), 0, (1000,), (1,)))]
    return ht.torch_zip(path, ht.state_dict(items), {"0": FLOATS[:8]})


def _empty_huge_shape(path):
    """An empty tensor NumPy cannot make: shape (0, 2^30, 2^30)."""
    items = [(W, ht.tensor(ht.storage("0", 0), 0, (0, 2**30, 2**30), (1, 1, 1)))]
    return ht.torch_zip(path, ht.state_dict(items), {"0": b""})


def _escape_codes(path):
    value = ht.global_("os\x1b[2J\x1b]0;owned\x07", "system") + b")R"
    return ht.torch_zip(path, ht.state_dict([(W, value)]), {})


def _huge_key(path):
    key = ht.text("k" * 1_000_000 + "\x1b[31m")
    return ht.torch_zip(path, ht.state_dict([(key, ht.integer(1))]), {})


def _legacy(path, keys):
    """A legacy file of one tensor on storage "0" whose storage key list is ``keys``."""
    pid = b"(" + ht.text("storage") + ht.global_("torch", "FloatStorage") + ht.text("0") + ht.text("cpu")
    pid += ht.integer(4) + b"Nt" + b"Q"
    obj = ht.state_dict([(W, ht.tensor(pid, 0, (4,), (1,)))])
    head = b"".join(
        pickle.dumps(x, protocol=2) for x in (0x1950A86A20F9469CFC6C, 1001, {"little_endian": True})
    )
    count = struct.pack("<q", 4)
    data = head + obj + pickle.dumps(keys, protocol=2) + (count + FLOATS[:16]) * 2
    path.write_bytes(data)
    return path


def _legacy_duplicate_keys(path):
    """The storage list names storage "0" twice (its bytes would be read twice)."""
    return _legacy(path, ["0", "0"])


def _legacy_unhashable_keys(path):
    """The storage list holds a list (once a TypeError from set())."""
    return _legacy(path, [["0"]])


CASES = {  # name -> (builder, what the one line must say)
    "build-shrinks-storage": (_build_shrinks_storage, "storage '1' has 8 bytes, its 1000000000 elements"),
    "build-on-storage": (_build_on_storage, "refused: the pickle sets attributes on a StorageRef"),
    "deep-tuple-key": (_deep_tuple_key, "containers nested more than 64 deep"),
    "repeated-string": (_repeated_string, "refused: unexpected persistent id"),
    "long-binput-memo": (_long_binput, "expected a state dict (names -> tensors), found NoneType"),
    "stride-zero": (_stride_zero, "400000000 elements over a storage of 1: expanded tensors"),
    "shared-storage": (_shared_storage, "the tensors hold 1200000 bytes, more than 4 times the file"),
    "deflated-lies": (_deflated_lies, "'archive/data.pkl' inflates to more than its declared size"),
    "deflated-huge": (_deflated_huge, "declares 1500000000 bytes, more than the 33554432 accepted"),
    "duplicate-entry": (_duplicate_entry, "the archive holds two entries named 'archive/data/1'"),
    "overlapping": (_overlapping, "zip entries 'archive/data/1' and 'archive/data/2' overlap"),
    "storage-beyond-entry": (_storage_beyond_entry, "storage '0' has 8 bytes, its 1000 elements need 4000"),
    "empty-huge-shape": (_empty_huge_shape, "a tensor record has size (0, 1073741824, 1073741824)"),
    "escape-codes": (_escape_codes, r"asks for os\x1b[2J\x1b]0;owned\x07.system"),
    "huge-key": (_huge_key, "entry 'kkkk"),
    "legacy-duplicate-keys": (_legacy_duplicate_keys, "the legacy storage list does not match"),
    "legacy-unhashable-keys": (_legacy_unhashable_keys, "the legacy storage list does not match"),
}

# loads each file named on the command line in one process; per file: the outcome, the seconds and
# how far the peak resident memory rose (MB)
_LOAD_EACH = r"""
import json, resource, sys, time
import minicnn as mc
from minicnn.errors import MinicnnError
for path in sys.argv[1:]:
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    try:
        mc.load(path)
        outcome = "LOADED"
    except MinicnnError as exc:
        outcome = str(exc)
    except BaseException as exc:
        outcome = f"ESCAPED {type(exc).__name__}: {str(exc)[:200]}"
    rose = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    print(json.dumps([path, outcome, time.perf_counter() - start, rose]), flush=True)
"""


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    """name -> (path, message, seconds, MB of peak memory added), every file loaded in one child."""
    folder = tmp_path_factory.mktemp("hostile")
    paths = {name: build(folder / f"{name}.pth") for name, (build, _) in CASES.items()}
    command = [sys.executable, "-c", _LOAD_EACH, *map(str, paths.values())]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    found = {path: rest for path, *rest in map(json.loads, done.stdout.splitlines())}
    return {name: (path, *found[str(path)]) for name, path in paths.items()}


@pytest.mark.parametrize("name", list(CASES))
def test_hostile_file_is_one_bounded_line(hostile, name):
    path, message, seconds, rose = hostile[name]
    expected = CASES[name][1]
    assert message.startswith(f"{path}: ") and expected in message, message[:500]
    assert message.isprintable() and len(message) < len(str(path)) + 400, message[:500]
    assert seconds < 10 and rose < 100, (seconds, rose)


def test_hostile_files_are_read_as_torch_reads_them(tmp_path):
    """The two differentials are real: torch.load takes the first of two entries (ones), Python's
    zipfile the last (zeros), so a reader that picked one would disagree with a torch check."""
    torch = oracle("torch")
    path = _duplicate_entry(tmp_path / "dup.pth")
    loaded = torch.load(path, weights_only=True)["features.0.bias"]
    np.testing.assert_array_equal(loaded.numpy(), np.ones(4, np.float32))
    import zipfile

    with zipfile.ZipFile(path) as z:
        assert z.read(f"{ht.ARCHIVE}/data/1") == bytes(16)


@pytest.mark.parametrize("name", ["build-shrinks-storage", "deep-tuple-key", "duplicate-entry"])
def test_cli_exits_2_with_one_line(hostile, name):
    path = hostile[name][0]
    done = subprocess.run(
        [sys.executable, "-m", "minicnn", "info", str(path)], capture_output=True, text=True, timeout=120
    )
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1 and str(path) in lines[0], done.stderr[-1000:]
    assert CASES[name][1] in lines[0]


# -- reading tensors: views, offsets and strides against torch -------------------------------------
@pytest.mark.parametrize("legacy", [False, True])
def test_strided_and_offset_tensors_equal_torch(tmp_path, legacy):
    """Views saved with their storage (a transpose, a slice with an offset, a column, a scalar):
    each array equals torch's own reading of the file."""
    torch = oracle("torch")
    base = torch.arange(60, dtype=torch.float32).reshape(6, 10)
    sd = {
        "t": base.t(),
        "slice": base[2:, 3:7],
        "column": base[:, 4],
        "scalar": base[1, 1],
        "empty": base[:0],
    }
    path = tmp_path / "views.pth"
    torch.save(sd, path, _use_new_zipfile_serialization=not legacy)
    with TorchFile(path, "torch-legacy" if legacy else "torch-zip") as tf:
        for name, value in sd.items():
            got = tf.array(name)
            assert got.flags.c_contiguous and got.flags.writeable
            np.testing.assert_array_equal(got, value.contiguous().numpy(), err_msg=name)
            assert tf.tensors[name].stride == tuple(value.stride())  # really strided in the file


def test_a_flipped_storage_byte_loads_as_torch_loads_it(tmp_path):
    """Storage bytes carry a CRC-32 that torch.load does not check (checking it would double the
    load time): a flipped weight byte is read as torch reads it, the data.pkl's flip is refused."""
    torch = oracle("torch")
    path = tmp_path / "w.pth"
    torch.save({"w": torch.arange(16, dtype=torch.float32)}, path)
    data = bytearray(path.read_bytes())
    i = data.index(np.arange(16, dtype="<f4").tobytes())
    data[i + 9] ^= 0x40
    path.write_bytes(bytes(data))
    with TorchFile(path, "torch-zip") as tf:
        np.testing.assert_array_equal(tf.array("w"), torch.load(path, weights_only=True)["w"].numpy())
        assert tf.array("w")[2] != 2.0
    data = bytearray(path.read_bytes())
    data[data.index(b"_rebuild_tensor_v2") + 3] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(MinicnnError, match=r"zip entry '.*data.pkl' is damaged \(CRC-32 mismatch\)"):
        TorchFile(path, "torch-zip")


def test_big_endian_archive_reads_the_same_numbers(tmp_path):
    """A zip written on a big-endian machine says "big" in its byteorder entry and stores every
    element byte-swapped (torch's serialization.py): the same file rewritten that way reads the
    same arrays, strided views included, as native-endian arrays."""
    import zipfile

    torch = oracle("torch")
    base = torch.arange(60, dtype=torch.float32).reshape(6, 10)
    sd = {"t": base.t(), "slice": base[2:, 3:7], "h": torch.arange(5, dtype=torch.float16)}
    little, big = tmp_path / "little.pth", tmp_path / "big.pth"
    torch.save(sd, little)
    dtypes = {}
    with TorchFile(little, "torch-zip") as tf:
        expected = {name: tf.array(name) for name in sd}
        for t in tf.tensors.values():
            dtypes[t.storage.key] = t.storage.stype.dtype
    with zipfile.ZipFile(little) as src, zipfile.ZipFile(big, "w", zipfile.ZIP_STORED) as dst:
        for info in src.infolist():
            data, key = src.read(info), info.filename.rsplit("/", 1)[-1]
            if info.filename.endswith("/byteorder"):
                data = b"big"
            elif "/data/" in info.filename:
                data = np.frombuffer(data, dtypes[key]).byteswap().tobytes()
            dst.writestr(info, data)
    with TorchFile(big, "torch-zip") as tf:
        for name, want in expected.items():
            got = tf.array(name)
            assert got.dtype == want.dtype and got.dtype.isnative, name
            np.testing.assert_array_equal(got, want, err_msg=name)


# -- the bounded interpreter against Python's pickle ---------------------------------------------
_PLAIN = {
    "ints": [0, 1, -1, 255, 256, 65535, 65536, -(2**31), 2**31 - 1, 2**31, 2**100, -(2**100)],
    "floats": (0.5, -1e300, float("inf")),
    "text": ["", "a", "é\u202e", "x" * 300],
    "nested": {"a": [1, (2, 3), {"b": None}], (1, (2,)): True, "empty": ((), [], {})},
    "shared": None,
}


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_interpreter_reads_what_pickle_writes(protocol):
    import io

    shared = ["same"]
    obj = dict(_PLAIN, shared=[shared, shared])
    data = pickle.dumps(obj, protocol=protocol)
    got = safe_pickle.load(io.BytesIO(data), len(data), find_class=None)
    assert got == pickle.loads(data) == obj
    assert got["shared"][0] is got["shared"][1]  # the memo shares, as pickle's does


def _run(data: bytes):
    import io

    def refuse(module, name):
        raise MinicnnError(f"no globals ({module}.{name})")

    return safe_pickle.load(io.BytesIO(data), len(data), refuse)


def test_interpreter_depth_limit_is_exact():
    deep = 63  # one tuple inside 63 more: depth 64 is accepted, 65 is not
    assert _run(b"\x80\x02)" + b"\x85" * deep + b".") is not None
    with pytest.raises(MinicnnError, match="nested more than 64 deep"):
        _run(b"\x80\x02)" + b"\x85" * (deep + 1) + b".")
    with pytest.raises(MinicnnError, match="nested more than 64 deep"):  # lists grown by APPEND too
        _run(b"\x80\x02]" + b"(]" * 70 + b"e" * 70 + b".")


@pytest.mark.parametrize(
    "data, why",
    [
        (b"\x80\x02]q\x00h\x00\x850h\x00Na.", "changes a container after putting it inside another"),
        (b"\x80\x02]q\x00h\x00a.", "changes a container after putting it inside another"),
        (b"\x80\x02h\x05.", "memo entry 5 was never stored"),
        (b"\x80\x02X\xff\xff\xff\x7f.", "an argument of 2147483647 bytes, only 1 left"),
        (b"\x80\x02cos\nsystem\n.", "no globals (os.system)"),
        (b"\x80\x02)\x81.", "opcode 0x81 is not one a state dict needs"),
        (b"\x80\x02N}b.", "sets attributes on a NoneType"),
        (b"\x80\x02NN.", "STOP with other than one object"),
        (b"\x80\x02}(}Nu.", "a dict key of type dict"),
        (b"\x80\x02" + b"N0" * 100_001 + b".", "more than 200000 opcodes"),
    ],
    ids=["sealed", "self-append", "memo", "length", "global", "newobj", "build", "stop", "key", "ops"],
)
def test_interpreter_refuses(data, why):
    with pytest.raises(MinicnnError) as err:
        _run(data)
    assert why in str(err.value)
    assert str(err.value).startswith("damaged or unsupported pickle at byte") or "os.system" in why


def test_quote_is_bounded_and_escaped():
    big = ("x" * 1_000_000,) * 1_000_000  # a terabyte as a full repr
    assert len(quote(big)) == 80 and quote(big).startswith("('xxx") and quote(big).endswith("...")
    assert len(quote(big, 200)) == 200
    assert quote("a\x1b[2J\n\u202e") == r"'a\x1b[2J\n\u202e'"
    assert quote("k" * 100, 8) == "'kkkkkkkk...'"
    assert quote(b"\xff\x1bab") == r"'\\xff\x1bab'"  # bytes: undecodable ones as \\xff, then repr
    assert quote(2**5000) == "<int of 5001 bits>"
    assert quote({"k": 1.5}) == "{'k': 1.5}" and quote(["F32"]) == "['F32']"
    assert quote(object()) == "<object>"  # a foreign __repr__ is never called


# -- safetensors headers ---------------------------------------------------------------------------
def _safetensors(path, header: bytes, data: bytes = FLOATS[:32]):
    path.write_bytes(struct.pack("<Q", len(header)) + header + data)
    return path


def _entry(begin: int, end: int, dtype: str = "F32") -> str:
    return f'{{"dtype": "{dtype}", "shape": [4], "data_offsets": [{begin}, {end}]}}'


@pytest.mark.parametrize(
    "header, why",
    [
        (f'{{"a": {_entry(0, 16)}, "a": {_entry(16, 32)}}}', "names 'a' twice"),
        (f'{{"a": {_entry(0, 16)}, "b": {_entry(8, 24)}}}', "tensors 'a' and 'b' share bytes"),
        ('{"a": {"dtype": "F32", "shape": [4.0], "data_offsets": [0, 16]}}', "lists of non-negative ints"),
        ('{"a": {"dtype": "F32", "shape": [' + "9" * 5000 + '], "data_offsets": [0, 16]}}', "damaged"),
        (
            '{"a": {"dtype": "F32", "shape": [2147483648, 2147483648, 4], "data_offsets": [0, 0]}}',
            "281474976710656 elements",
        ),
        ('{"a": {"dtype": ["F32"], "shape": [4], "data_offsets": [0, 16]}}', "has dtype ['F32']"),
        ("[" * 100_000 + "]" * 100_000, "damaged safetensors header"),
        (f'{{"\\u001b[2J": {_entry(0, 16, "F99")}}}', r"'\x1b[2J'"),
    ],
    ids=[
        "duplicate",
        "overlap",
        "float-dim",
        "huge-int",
        "product-overflows-int64",
        "dtype-list",
        "deep",
        "escape",
    ],
)
def test_hostile_safetensors_headers(tmp_path, header, why):
    from minicnn.io.safetensors_loader import read_header

    path = _safetensors(tmp_path / "h.safetensors", header.encode())
    with pytest.raises(MinicnnError) as err:
        read_header(path)
    assert why in str(err.value) and str(err.value).isprintable() and len(str(err.value)) < 400, str(
        err.value
    )


def test_safetensors_header_longer_than_the_file(tmp_path):
    import minicnn as mc

    path = tmp_path / "long.safetensors"
    path.write_bytes(struct.pack("<Q", 2**62) + b'{"a": 1}')
    from minicnn.io.safetensors_loader import read_header

    with pytest.raises(MinicnnError, match=r"declares 4611686018427387904 bytes, the file holds 8"):
        read_header(path)
    with pytest.raises(MinicnnError, match="not an HDF5 file|declares"):  # not sniffed as safetensors
        mc.load(path)


def test_vgg_messages_stay_short_for_huge_state_dicts():
    """Keys and indices from the file are quoted, a few at a time: 30,000 classifier layers or a
    megabyte key do not make a megabyte message."""
    from minicnn.io.torchvision import _check_vgg, build_vgg

    shapes = {"features.0.weight": (4, 3, 3, 3), "features.0.bias": (4,)}
    shapes.update({f"classifier.{i}.weight": (2, 2) for i in range(1, 30001)})
    with pytest.raises(MinicnnError, match=r"classifier linear layers at 1, 2, 3, 4, 5, 6, \.\.\.:") as err:
        build_vgg(shapes, read=None, source="test")
    assert len(str(err.value)) < 400
    with pytest.raises(MinicnnError, match="architecture minicnn does not read") as err:
        _check_vgg(["k" * 1_000_000 + "\x1b[2J", "fc.weight"])
    assert len(str(err.value)) < 400 and str(err.value).isprintable()
