python benchmarks/accuracy.py --seeds 0 --methods CISS-VAE --jobs 2 --csv s0.csv; python benchmarks/accuracy.py --seeds 1 2 --methods CISS-VAE --jobs 2 --csv s12.csv (then concatenated)
927
