"""The detector: is a clip synthetic? A timm backbone per frame with a frame-difference stream and a temporal
head (model.py), data sets where both classes take the same codec path (data.py), Lightning training with
temperature calibration (training.py), evaluation (evaluate.py) and `daas scan` (scan.py), which combines
C2PA, the DAAS watermark and the classifier. Heavy libraries load inside functions."""
