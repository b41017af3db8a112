"""The inner loop: a Clara 4.x config_train.json -> MONAI objects -> SupervisedTrainer.

Entry points: ``mmar_automl.train.run.main(argv)`` and ``mmar_automl.train.run.preload()``.
Nothing heavy is imported here.
"""
