"""Reading and writing: minicnn's own HDF5 format, Keras files, images and preprocessing."""
