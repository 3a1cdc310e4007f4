"""Root conftest: loads the conformance suite's pytest plugin (options, fixtures, summary)."""

pytest_plugins = ["conformance.suite.plugin"]
