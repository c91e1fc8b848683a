pytest_plugins = [
    "tests.fixtures.s3server",
    "tests.fixtures.server",
    "tests.fixtures.postgres",
    "tests.fixtures.backends",
    "tests.fixtures.gitserver",
]
