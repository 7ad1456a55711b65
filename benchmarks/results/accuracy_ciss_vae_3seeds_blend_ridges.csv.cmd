python benchmarks/accuracy.py --seeds 0 1 2 --methods CISS-VAE --jobs 2 --csv /tmp/bench/ciss3_ridge.csv --out /tmp/bench/ciss3_ridge.md
1047.9
