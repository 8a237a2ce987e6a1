"""Speed benchmarks run on one core: keep numpy's and torch's thread pools from spreading the work out (the
world renderer and the video code use no BLAS, so this only guards against a thread pool warming up)."""
import os

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
