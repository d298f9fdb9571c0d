"""Gradient-based visualisation tools; each returns arrays (``minicnn.render`` makes pictures).

One method per file: saliency (Simonyan et al. 2013, sec. 3), reconstruct (Zeiler & Fergus 2013,
sec. 2), equivalence (Simonyan et al. 2013, sec. 4), occlusion (Zeiler & Fergus 2013, sec. 4.2) and
cam / grad_cam (Zhou et al. 2016; Selvaraju et al. 2017). ``targets`` holds what they share: target
resolution, input checks and partial backward passes. Reach them as ``mc.saliency`` etc.
"""
