"""The pytest plugin as a user's suite meets it: fixtures, marker, options and failure messages (prober faked)."""

from __future__ import annotations

import re

import pytest

pytest_plugins = ["pytester"]

FIXTURES = ("stackprobe_compose_files", "stackprobe_project", "stackprobe_memory", "compose_stack", "stackprobe")


def test_every_fixture_is_listed_with_a_one_line_docstring(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--fixtures", "-p", "no:cacheprovider")
    text = result.stdout.str()
    for name in FIXTURES:
        match = re.search(rf"^{name}( \[session scope\])? -- .*\n    (\S.*)\n\n", text, re.MULTILINE)
        assert match, f"{name} is not listed with a one-line docstring:\n{text}"


def test_a_conftest_overrides_a_fixture_the_plugin_uses(plugin_project: pytest.Pytester) -> None:
    (plugin_project.path / "stacks").mkdir()
    (plugin_project.path / "stacks" / "other.yaml").write_text("services:\n  web:\n    image: example/web\n")
    plugin_project.makepyfile(
        conftest_override="",
        test_override="""
        from pathlib import Path

        import pytest


        @pytest.fixture(scope="session")
        def stackprobe_compose_files(pytestconfig):
            return [pytestconfig.rootpath / "stacks" / "other.yaml"]


        def test_runs_probe_the_overridden_files(stackprobe, probe_specs):
            stackprobe.run(service="web", locustfile=Path("loadtests"))
            assert [p.name for p in probe_specs[0].compose_files] == ["other.yaml"]
        """,
    )
    plugin_project.runpytest().assert_outcomes(passed=1)


def test_a_run_naming_its_compose_files_needs_none_in_the_rootdir(plugin_project: pytest.Pytester) -> None:
    (plugin_project.path / "compose.yaml").rename(plugin_project.path / "stack.yaml")
    plugin_project.makepyfile(
        test_named_files="""
        def test_probe(stackprobe, probe_specs):
            stackprobe.run(compose_files="stack.yaml", locustfile="loadtests")
            assert [p.name for p in probe_specs[0].compose_files] == ["stack.yaml"]
        """
    )
    plugin_project.runpytest().assert_outcomes(passed=1)


def test_marker_settings_reach_the_run_and_the_call_and_closer_markers_win(plugin_project: pytest.Pytester) -> None:
    plugin_project.makepyfile(
        test_marker_settings="""
        import pytest

        pytestmark = pytest.mark.stackprobe(users=3, slo="errors<5%")


        @pytest.mark.stackprobe(memory="96m", users=5, duration="12s")
        def test_settings(stackprobe, probe_specs):
            stackprobe.run(duration="7s")
            spec = probe_specs[0]
            assert spec.memory_bytes == 96 * 1024**2
            assert spec.users == 5
            assert spec.duration_s == 7
            assert spec.slo == "errors<5%"
            assert (spec.service, spec.keep_up) == ("app", False)
        """
    )
    plugin_project.runpytest("--strict-markers").assert_outcomes(passed=1)


def test_runs_write_their_reports_under_the_tests_tmp_path_one_folder_each(plugin_project: pytest.Pytester) -> None:
    plugin_project.makepyfile(
        test_tmp_reports="""
        def test_two_runs(stackprobe, tmp_path):
            first = stackprobe.run(memory="128m")
            stackprobe.run(memory="256m")
            assert stackprobe.last is not first
            for n in (1, 2):
                assert (tmp_path / "stackprobe" / f"run-{n}" / "report.json").is_file()
                assert (tmp_path / "stackprobe" / f"run-{n}" / "report.html").is_file()
        """
    )
    plugin_project.runpytest().assert_outcomes(passed=1)


def test_stackprobe_out_gives_each_test_a_report_folder_named_for_it(plugin_project: pytest.Pytester) -> None:
    plugin_project.makepyfile(
        test_out_option="""
        import pytest

        @pytest.mark.parametrize("memory", ["128m"])
        def test_probe(stackprobe, memory):
            stackprobe.assert_pass(stackprobe.run(memory=memory))
        """
    )
    plugin_project.runpytest("--stackprobe-out", "reports").assert_outcomes(passed=1)
    folder = plugin_project.path / "reports" / "test_out_option.py__test_probe_128m_" / "run-1"
    assert (folder / "report.json").is_file()
    assert (folder / "report.html").is_file()


def test_keep_up_reaches_the_run_and_the_summary_says_how_to_remove_the_stack(plugin_project: pytest.Pytester) -> None:
    plugin_project.makepyfile(
        test_keep_up="""
        def test_kept(stackprobe, probe_specs):
            stackprobe.run()
            assert probe_specs[0].keep_up is True
        """
    )
    result = plugin_project.runpytest("--stackprobe-keep-up")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        [
            "*stackprobe: stacks left running (--stackprobe-keep-up)*",
            "stackprobe-fake-1: remove it with: docker ps -aq --filter "
            "label=com.docker.compose.project=stackprobe-fake-1 | xargs -r docker rm -f -v; *",
        ]
    )


def test_a_failed_verdict_fails_the_test_listing_every_reason_and_the_report(plugin_project: pytest.Pytester) -> None:
    plugin_project.makepyfile(
        test_failing_probe="""
        import pytest

        @pytest.mark.stackprobe(memory="32m", users=20, duration="30s")
        def test_holds_32_mib(stackprobe):
            report = stackprobe.run()
            stackprobe.assert_pass(report)
        """
    )
    result = plugin_project.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*stackprobe verdict 'fail', expected 'pass' (service app, memory limit 32 MiB, 20 users for 30 s)",
            "*reasons:",
            "*  - 1 OOM kill (the kernel's oom_kill counter)",
            "*  - SLO not met: p95 < 200 ms (actual 850 ms)",
            "*report: */test_holds_32_mib0/stackprobe/run-1/report.html (and report.json beside it)",
        ]
    )
    result.stdout.fnmatch_lines(
        [
            "*- stackprobe reports -*",
            "run-1 (app): verdict fail; report */test_holds_32_mib0/stackprobe/run-1/report.html (report.json *)",
        ]
    )
    # The failure points at the test's own line, not into the plugin.
    assert "pytest_plugin.py" not in result.stdout.str()
    assert "stackprobe/api.py" not in result.stdout.str()


def test_a_passing_test_shows_no_report_section(plugin_project: pytest.Pytester) -> None:
    plugin_project.makepyfile(
        test_passing_probe="""
        def test_holds_128_mib(stackprobe):
            stackprobe.assert_pass(stackprobe.run(memory="128m"))
        """
    )
    result = plugin_project.runpytest("-rA")
    result.assert_outcomes(passed=1)
    assert "stackprobe reports" not in result.stdout.str()
    assert "fake run of app: verdict pass" in result.stdout.str()  # -rA shows the run's console


def test_a_report_path_is_a_junit_property_of_the_test(plugin_project: pytest.Pytester) -> None:
    plugin_project.makepyfile(
        test_junit_property="""
        def test_probe(stackprobe):
            stackprobe.run()
        """
    )
    plugin_project.runpytest("--junitxml=junit.xml").assert_outcomes(passed=1)
    xml = (plugin_project.path / "junit.xml").read_text()
    assert re.search(r'<property name="stackprobe_report" value="[^"]*/stackprobe/run-1/report.html"', xml), xml


def test_an_expected_failure_is_asserted_with_assert_verdict(plugin_project: pytest.Pytester) -> None:
    plugin_project.makepyfile(
        test_expected_failure="""
        def test_32_mib_is_too_small(stackprobe):
            report = stackprobe.run(memory="32m")
            stackprobe.assert_verdict(report, "fail")
            assert report.oom_kills == 1
        """
    )
    plugin_project.runpytest().assert_outcomes(passed=1)


@pytest.mark.parametrize(
    ("test_body", "message"),
    [
        pytest.param(
            '@pytest.mark.stackprobe(memroy="128m")\ndef test_bad(stackprobe):\n    stackprobe.run()',
            "stackprobe.run: unknown setting memroy (known: compose_files, service, *",
            id="misspelt-marker-setting",
        ),
        pytest.param(
            'def test_bad(stackprobe):\n    stackprobe.run(memory="12x")',
            "stackprobe.run: not a size: '12x' (expected e.g. 128m, 1g, 64MiB or a number of bytes)",
            id="bad-size",
        ),
        pytest.param(
            'def test_bad(stackprobe):\n    stackprobe.run(users="many")',
            "stackprobe.run: users='many': expected a whole number",
            id="users-not-a-number",
        ),
        pytest.param(
            'def test_bad(stackprobe):\n    stackprobe.run(shape="sawtooth")',
            "stackprobe.run: unknown shape 'sawtooth'; choose one of steady, ramp, spike, step, soak",
            id="unknown-shape",
        ),
        pytest.param(
            '@pytest.mark.stackprobe("128m")\ndef test_bad(stackprobe):\n    pass',
            "@pytest.mark.stackprobe takes settings by name, e.g. memory='128m'",
            id="positional-marker-argument",
        ),
        pytest.param(
            "def test_bad(stackprobe):\n    stackprobe.assert_pass()",
            "stackprobe: no run was made in this test (call stackprobe.run first)",
            id="assert-before-any-run",
        ),
    ],
)
def test_a_setting_the_run_cannot_take_fails_the_test_with_the_reason_not_a_traceback(
    plugin_project: pytest.Pytester, test_body: str, message: str
) -> None:
    plugin_project.makepyfile(test_bad_setting="import pytest\n\n" + test_body + "\n")
    result = plugin_project.runpytest()
    assert result.ret == pytest.ExitCode.TESTS_FAILED or result.parseoutcomes().get("errors") == 1
    result.stdout.fnmatch_lines([message])
    assert "Traceback" not in result.stdout.str()


def test_compose_stack_without_a_compose_file_says_which_fixture_to_override(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_no_compose_file="def test_up(compose_stack):\n    pass\n")
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        ["*compose_stack*", "*stackprobe: no compose file in *; or override the stackprobe_compose_files fixture"]
    )


def test_an_unused_plugin_imports_neither_docker_nor_the_prober_nor_locust(
    pytester: pytest.Pytester, modules_seen: list[str]
) -> None:
    pytester.makepyfile(test_plain="def test_plain():\n    pass\n")
    result = pytester.runpytest_subprocess(*modules_seen, "-p", "no:cacheprovider", "-p", "no:locust")
    result.assert_outcomes(passed=1)
    assert "stackprobe" in result.stdout.str()  # the plugin is loaded ("plugins: stackprobe-0.1.0")
    result.stdout.fnmatch_lines(
        [
            "module locust: not imported",
            "module gevent: not imported",
            "module docker: not imported",
            "module stackprobe.probe: not imported",
        ]
    )
