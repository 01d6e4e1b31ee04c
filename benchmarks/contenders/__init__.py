"""One package per contender, one module per workload; see ``benchmarks/README.md``."""
