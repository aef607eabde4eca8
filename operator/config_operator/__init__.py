"""config-operator: PrometheusConfig + ServiceMonitors/PodMonitors -> Secret prometheus-<name>."""

__version__ = "0.1.0"
