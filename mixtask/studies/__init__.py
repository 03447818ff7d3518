"""Studies across runs and networks: speed benchmarks (`bench`), the architecture comparison (`compare`,
`compare_report`) and strength sweeps (`sweep`)."""
