"""``python -m tests.fakekube`` on its own: a kubeconfig that kubernetes_asyncio loads, preloaded objects, a clean stop."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from pathlib import Path

from kubernetes_asyncio import client, config

REPO_ROOT = Path(__file__).resolve().parents[2]

OBJECTS = """\
apiVersion: reloader.dev/v1alpha1
kind: PrometheusConfig
metadata: {name: main, namespace: monitoring}
spec: {serviceMonitorSelector: {}}
---
apiVersion: monitoring.coreos.com/v1
kind: ServiceMonitor
metadata: {name: app, namespace: apps, labels: {team: a}}
spec: {selector: {matchLabels: {app: x}}, endpoints: [{port: web}]}
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: prometheusconfigs.reloader.dev}
"""


async def test_standalone_server(tmp_path: Path) -> None:
    objects = tmp_path / "objects.yaml"
    objects.write_text(OBJECTS)
    kubeconfig = tmp_path / "kubeconfig"
    command = [sys.executable, "-m", "tests.fakekube", "--port", "0", "--write-kubeconfig", str(kubeconfig)]
    proc = await asyncio.create_subprocess_exec(
        *command, "--load", str(objects), cwd=REPO_ROOT, stderr=asyncio.subprocess.PIPE
    )
    try:
        async with asyncio.timeout(60):
            while not kubeconfig.exists():
                assert proc.returncode is None, "the server exited early"
                await asyncio.sleep(0.1)
        configuration = client.Configuration()
        await config.load_kube_config(config_file=str(kubeconfig), client_configuration=configuration)
        async with client.ApiClient(configuration) as api:
            namespaces = [n.metadata.name for n in (await client.CoreV1Api(api).list_namespace()).items]
            monitors = await client.CustomObjectsApi(api).list_cluster_custom_object(
                "monitoring.coreos.com", "v1", "servicemonitors", label_selector="team=a"
            )
        assert namespaces == ["apps", "default", "kube-system", "monitoring"]
        assert [(m["metadata"]["namespace"], m["metadata"]["name"]) for m in monitors["items"]] == [
            ("apps", "app")
        ]
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
        try:
            async with asyncio.timeout(30):
                _, stderr = await proc.communicate()
        except TimeoutError:  # never leave the server running; the exit code then fails the test
            proc.kill()
            _, stderr = await proc.communicate()
    output = stderr.decode()
    code = proc.returncode
    assert code == 0, output
    assert "fake API server listening" in output and "loaded=2" in output
    assert "skipped an object of a kind not served" in output and "kind=CustomResourceDefinition" in output
    assert "path=/apis/monitoring.coreos.com/v1/servicemonitors" in output


def test_bad_load_file_is_one_clear_line(tmp_path: Path) -> None:
    missing = tmp_path / "missing.yaml"
    result = subprocess.run(
        [sys.executable, "-m", "tests.fakekube", "--port", "0", "--load", str(missing)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith('msg="fake API server failed"') and str(missing) in lines[-1]
    assert "Traceback" not in result.stderr
