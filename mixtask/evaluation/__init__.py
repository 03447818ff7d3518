"""`mixtask eval`: held-out samples (`inputs`), scored groups (`groups`), the metrics and classical baselines
they use, the whole run (`run`) and its tables (`report`)."""
