"""Developer tools of the source checkout, not part of the installed package: `fuzz` (run as
`python -m tools.fuzz` from the root) and `gpu_harness/` (a TensorFlow-free GPU harness)."""
