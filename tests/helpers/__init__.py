"""What the tests share besides fixtures: builders of tiny corpora and models, and scripts some tests run in a
subprocess (fault_injection.py, ddp_masked_run.py). Imported as ``tests.helpers.<module>`` everywhere."""
