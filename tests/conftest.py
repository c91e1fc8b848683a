pytest_plugins = ["tests.fixtures.s3server", "tests.fixtures.server"]
