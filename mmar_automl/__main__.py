from mmar_automl.cli import main

main()
