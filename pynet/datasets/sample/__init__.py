"""The MNIST sample bundled with pynet: 5,000 training and 1,000 test digits (the first 500 and 100 of
each class) as standard IDX files, plus SAMPLE.json recording which images they are. Regenerate with
``python -m pynet.datasets make-sample``; provenance and licence are in docs/DATASETS.md."""
