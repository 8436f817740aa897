"""Registers the Ray engine by import string: loading this plugin never imports Ray."""

from zoopipe_core.plugins import RegisterEngine, hookimpl


@hookimpl
def zoopipe_register_engines(register: RegisterEngine) -> None:
    register("ray", "zoopipe_ray.engine:RayEngine", extra="ray")
