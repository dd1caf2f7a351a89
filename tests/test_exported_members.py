import hainet


def test_exported_members_are_locked() -> None:
    # Adding or removing a public name is an API change: update this list on purpose.
    assert sorted(hainet.__all__) == sorted(
        [
            "AgentRunner",
            "AgentSpec",
            "Backend",
            "BackendError",
            "BackendUnavailable",
            "BenchOptions",
            "CaseResult",
            "Catalog",
            "Completion",
            "ConfigError",
            "Controls",
            "Evolver",
            "GenerationParams",
            "HainetError",
            "HyperLoop",
            "Marketplace",
            "Message",
            "ModelNotFound",
            "ModelSpec",
            "Policy",
            "Request",
            "Run",
            "RunConfig",
            "Sandbox",
            "SandboxError",
            "SandboxResult",
            "Settings",
            "Store",
            "StoreError",
            "SuiteError",
            "Timing",
            "ValidationError",
            "__version__",
            "load_settings",
            "load_spec",
            "open_runner",
            "open_backend",
            "register_backend",
            "run_bench",
            "select",
            "test_agent",
        ]
    )
    for name in hainet.__all__:
        assert getattr(hainet, name) is not None
