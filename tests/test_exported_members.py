import hainet


def test_exported_members_are_locked() -> None:
    # Adding or removing a public name is an API change: update this list on purpose.
    assert sorted(hainet.__all__) == sorted(
        [
            "Backend",
            "BackendError",
            "BackendUnavailable",
            "BenchOptions",
            "CaseResult",
            "Catalog",
            "Completion",
            "ConfigError",
            "GenerationParams",
            "HainetError",
            "Message",
            "ModelNotFound",
            "ModelSpec",
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
            "open_backend",
            "register_backend",
            "run_bench",
            "select",
        ]
    )
    for name in hainet.__all__:
        assert getattr(hainet, name) is not None
