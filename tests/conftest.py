import os

# Eight fake CPU devices for the sharding tests; must be set before JAX starts. The default suite compiles
# many small programs and runs them briefly, so it asks XLA for less backend optimisation (compiles take
# about 40% less time; results are the same, tested against recorded values). Slow tests (`-m slow`) run long
# programs and keep XLA's default optimisation.
XLA_TEST_FLAGS = "--xla_force_host_platform_device_count=8"
FAST_COMPILE = "--xla_backend_optimization_level=0"


def pytest_configure(config):
    slow = "slow" in (config.getoption("markexpr") or "") and "not slow" not in config.getoption("markexpr")
    flags = XLA_TEST_FLAGS if slow else f"{XLA_TEST_FLAGS} {FAST_COMPILE}"
    os.environ.setdefault("XLA_FLAGS", flags)
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
