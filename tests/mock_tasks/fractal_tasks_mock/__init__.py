"""Mock Fractal tasks: small scripts that follow the task protocol.

Each script is run as `python <script> --args-json ARGS --out-json OUT`.
The `generic_*` scripts do what their arguments say (produce a given
output, fail, sleep, die from a signal), so that tests can exercise every
rule of the runner.
"""
