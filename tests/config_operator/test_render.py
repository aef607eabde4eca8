"""render_files: manifests on disk in, the operator's prometheus.yaml out, and one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from config_operator.render import RenderError, render_files

PC = """\
apiVersion: reloader.dev/v1alpha1
kind: PrometheusConfig
metadata:
  name: {name}
  namespace: monitoring
spec:
  serviceMonitorSelector: {{}}
  serviceMonitorNamespaceSelector: {{}}
"""

SM = """\
apiVersion: monitoring.coreos.com/v1
kind: ServiceMonitor
metadata:
  name: {name}
{namespace}spec:
  selector: {{}}
  endpoints:
  - port: metrics
{extra}"""


def _sm(name: str, namespace: str | None = "shop", extra: str = "") -> str:
    ns = f"  namespace: {namespace}\n" if namespace else ""
    return SM.format(name=name, namespace=ns, extra=extra)


def _jobs(text: str) -> list[str]:
    return [j["job_name"] for j in yaml.safe_load(text)["scrape_configs"]]


def test_objects_across_several_files_and_documents(tmp_path: Path) -> None:
    a = tmp_path / "a.yaml"
    b = tmp_path / "b.yaml"
    a.write_text(_sm("zeta") + "---\n" + PC.format(name="main"))
    b.write_text("---\n" + _sm("alpha") + "---\n# only a comment\n")
    rendered = render_files([str(a), str(b)])
    assert _jobs(rendered.text) == ["serviceMonitor/shop/alpha/0", "serviceMonitor/shop/zeta/0"]
    assert rendered.warnings == ()


def test_kind_list_is_unwrapped_and_missing_namespace_is_default(tmp_path: Path) -> None:
    items = [yaml.safe_load(PC.format(name="main")), yaml.safe_load(_sm("web", namespace=None))]
    path = tmp_path / "list.yaml"
    path.write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "List", "items": items}))
    assert _jobs(render_files([str(path)]).text) == ["serviceMonitor/default/web/0"]


def test_malformed_monitor_is_a_warning_and_the_rest_is_rendered(tmp_path: Path) -> None:
    path = tmp_path / "in.yaml"
    bad = _sm("slow", extra="    interval: 5s\n    scrapeTimeout: 10s\n")
    path.write_text(PC.format(name="main") + "---\n" + bad + "---\n" + _sm("fine"))
    rendered = render_files([str(path)])
    assert _jobs(rendered.text) == ["serviceMonitor/shop/fine/0"]
    assert len(rendered.warnings) == 1
    assert rendered.warnings[0].startswith("skipped ServiceMonitor shop/slow: ")
    assert "scrapeTimeout '10s' is greater than the scrape interval '5s'" in rendered.warnings[0]


def test_other_kinds_are_ignored_with_a_warning(tmp_path: Path) -> None:
    path = tmp_path / "app.yaml"
    deployment = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n"
    path.write_text(PC.format(name="main") + "---\n" + deployment)
    rendered = render_files([str(path)])
    assert rendered.warnings == (f"{path}: document 2: ignored Deployment web",)


def test_several_prometheus_configs_need_a_name(tmp_path: Path) -> None:
    path = tmp_path / "two.yaml"
    path.write_text(PC.format(name="one") + "---\n" + PC.format(name="two") + "---\n" + _sm("web"))
    with pytest.raises(
        RenderError, match=r"several PrometheusConfigs in the input \(monitoring/one, monitoring/two\)"
    ):
        render_files([str(path)])
    assert _jobs(render_files([str(path)], name="two").text) == ["serviceMonitor/shop/web/0"]
    one = render_files([str(path)], name="monitoring/one").text
    # The same spec: only the `prometheus` external label (namespace/name) tells them apart.
    assert "prometheus: monitoring/one" in one
    assert one.replace("prometheus: monitoring/one", "prometheus: monitoring/two") == (
        render_files([str(path)], name="two").text
    )
    with pytest.raises(RenderError, match="no PrometheusConfig named 'three'"):
        render_files([str(path)], name="three")


def test_the_output_does_not_depend_on_the_order_of_the_files(tmp_path: Path) -> None:
    # Same bytes whichever order the files come in: render is as deterministic as the operator.
    a = tmp_path / "a.yaml"
    b = tmp_path / "b.yaml"
    a.write_text(PC.format(name="main"))
    b.write_text(_sm("x") + "---\n" + _sm("y", namespace="other"))
    assert render_files([str(a), str(b)]).text == render_files([str(b), str(a)]).text


ERRORS = [
    ("missing", None, "cannot read: No such file or directory"),
    ("bad.yaml", b"kind: [unclosed\n", "not valid YAML at line 2"),
    ("latin1.yaml", b"kind: caf\xe9\n", "not UTF-8 text"),
    ("scalar.yaml", b"just a string\n", "document 1: not a Kubernetes object"),
    ("nopc.yaml", _sm("web").encode(), "no PrometheusConfig in the input"),
    ("empty.yaml", b"", "no PrometheusConfig in the input"),
    ("badlist.yaml", b"kind: List\nitems: 3\n", "a List needs an items list"),
]


@pytest.mark.parametrize(("name", "content", "message"), ERRORS)
def test_render_error_is_one_line_naming_the_cause(
    tmp_path: Path, name: str, content: bytes | None, message: str
) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(RenderError) as info:
        render_files([str(path)])
    text = str(info.value)
    assert message in text
    assert "\n" not in text
    if message.startswith(("cannot", "not ", "document", "a List")):
        assert str(path) in text


def test_unreadable_directory_is_a_render_error(tmp_path: Path) -> None:
    with pytest.raises(RenderError, match="cannot read"):
        render_files([str(tmp_path)])


def test_malformed_prometheus_config_is_a_render_error_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "pc.yaml"
    path.write_text(PC.format(name="main").replace("spec:\n", "spec:\n  scrapeInterval: sometimes\n"))
    with pytest.raises(RenderError) as info:
        render_files([str(path)])
    assert (
        str(info.value)
        == "PrometheusConfig monitoring/main: spec.scrapeInterval: not a valid duration: 'sometimes'"
    )


def test_no_files_is_a_render_error() -> None:
    with pytest.raises(RenderError, match="no input files"):
        render_files([])


def test_a_document_with_no_name_is_one_line_and_the_rest_renders(tmp_path: Path) -> None:
    path = tmp_path / "in.yaml"
    nameless = "apiVersion: monitoring.coreos.com/v1\nkind: PodMonitor\nspec:\n  podMetricsEndpoints: []\n"
    path.write_text(nameless + "---\n" + _sm("web") + "---\n" + PC.format(name="main"))
    rendered = render_files([str(path)])
    assert _jobs(rendered.text) == ["serviceMonitor/shop/web/0"]
    assert rendered.warnings == (f"{path}: document 1: ignored PodMonitor with no metadata.name",)


def test_an_object_given_twice_is_one_line_and_the_first_counts(tmp_path: Path) -> None:
    a, b = tmp_path / "a.yaml", tmp_path / "b.yaml"
    a.write_text(_sm("web") + "---\n" + PC.format(name="main"))
    b.write_text(_sm("web", extra="    path: /other\n"))
    rendered = render_files([str(a), str(b)])
    (job,) = yaml.safe_load(rendered.text)["scrape_configs"]
    assert "metrics_path" not in job
    assert rendered.warnings == (
        f"{b}: document 1: ignored ServiceMonitor shop/web, given again (first in {a}: document 1)",
    )


def test_secrets_and_configmaps_in_the_input_feed_the_lookups(tmp_path: Path) -> None:
    path = tmp_path / "in.yaml"
    monitor = _sm(
        "web",
        extra="    basicAuth:\n      username: {name: auth, key: user}\n      password: {name: auth, key: pass}\n"
        "    tlsConfig:\n      ca: {configMap: {name: ca, key: ca.crt}}\n",
    )
    secret = "apiVersion: v1\nkind: Secret\nmetadata: {name: auth, namespace: shop}\n"
    secret += "stringData: {user: alice}\ndata: {pass: c2VjcmV0}\n"
    configmap = (
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ca, namespace: shop}\ndata: {ca.crt: PEM}\n"
    )
    path.write_text("---\n".join([monitor, secret, configmap, PC.format(name="main")]))
    rendered = render_files([str(path)])
    (job,) = yaml.safe_load(rendered.text)["scrape_configs"]
    assert job["basic_auth"] == {"username": "alice", "password": "secret"}
    assert job["tls_config"] == {"ca_file": "/etc/prometheus/certs/1_shop_ca_ca.crt"}
    assert rendered.warnings == ()
