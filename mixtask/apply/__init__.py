"""The `apply` pipeline: plan each input's outputs (`plan`), then read, translate and write them (`run`), with
cut-outs (`cutout`) and user masks (`usermask`)."""
