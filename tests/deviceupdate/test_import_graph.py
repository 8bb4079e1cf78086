"""The import graph, read from the source with ``ast``: tasks call services and never
the other way round (services queue work by task name through ``deviceupdate.dispatch``),
no selector imports a service, the portal never depends on the phone side, the test and
demo tooling (``deviceupdate_devtools``) is reached only from the simulator command (the
demo is the tooling's, calling the app), each model module holds only its own
subdomain's models, and no module of the project is part of an import cycle."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from deviceupdate.celery import app
from deviceupdate.celery_routes import PER_SERVER_TASKS
from deviceupdate.dispatch import registered_task

PROJECT_DIR = Path(__file__).resolve().parents[2]
TASK_MODULES = ("portal.tasks", "phones.tasks")
DISPATCH_FUNCTIONS = ("enqueue", "enqueue_now")
TOOLING = "deviceupdate_devtools"


def module_name(path: Path) -> str:
    parts = path.relative_to(PROJECT_DIR).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(source: str, *, module: str, is_package: bool = False) -> set[str]:
    """Every module ``source`` imports, anywhere (inside functions and ``TYPE_CHECKING``
    too): ``from a import b`` counts as ``a`` and ``a.b``, relative imports resolved,
    and ``import_module("a.b")`` with a literal name counts as ``a.b``."""
    package = module if is_package else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name | ast.Attribute)
            and (node.func.id if isinstance(node.func, ast.Name) else node.func.attr)
            in ("import_module", "__import__")
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            found.add(node.args[0].value)
    return found


def modules_under(*folders: str) -> dict[str, set[str]]:
    """``{module: the modules it imports}`` for every Python file under ``folders``."""
    graph = {}
    for folder in folders:
        for path in sorted((PROJECT_DIR / folder).rglob("*.py")):
            graph[module_name(path)] = imported_modules(
                path.read_text(encoding="utf-8"),
                module=module_name(path),
                is_package=path.name == "__init__.py",
            )
    return graph


def is_within(name: str, package: str) -> bool:
    return name == package or name.startswith(f"{package}.")


def importers_of(package: str, graph: dict[str, set[str]]) -> set[str]:
    return {
        module for module, imported in graph.items() if any(is_within(n, package) for n in imported)
    }


def dispatched_task_names() -> list[tuple[str, str, set[str]]]:
    """(module, task name, keyword names) of every ``enqueue``/``enqueue_now`` call with
    a literal task name in the portal and the phone side."""
    calls = []
    for folder in ("portal", "phones"):
        for path in sorted((PROJECT_DIR / folder).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if (
                    isinstance(node, ast.Call)
                    and isinstance(node.func, ast.Name)
                    and node.func.id in DISPATCH_FUNCTIONS
                ):
                    where = f"{module_name(path)}: {node.func.id} without a literal task name"
                    assert node.args, where
                    assert isinstance(node.args[0], ast.Constant), where
                    keywords = {keyword.arg for keyword in node.keywords if keyword.arg}
                    calls.append((module_name(path), str(node.args[0].value), keywords))
    return calls


def test_the_reader_sees_every_spelling_of_an_import() -> None:
    source = (
        "import portal.tasks\n"
        "from phones import tasks\n"
        "from . import tasks as relative\n"
        "from ..tasks import this_server\n"
        "def later():\n"
        "    from phones.tasks import server_logs_clear_task\n"
        "    importlib.import_module('portal.models')\n"
    )
    assert imported_modules(source, module="phones.services.example") == {
        "portal.tasks",
        "phones",
        "phones.tasks",
        "phones.services",
        "phones.services.tasks",
        "phones.tasks.this_server",
        "phones.tasks.server_logs_clear_task",
        "portal.models",
    }
    # And on the real tree: the phone side's tasks import the portal's.
    assert "portal.tasks" in modules_under("phones")["phones.tasks"]


def test_no_service_imports_a_task_module() -> None:
    graph = modules_under("portal/services", "phones/services")
    assert len(graph) >= 10  # the services were found: the check is not vacuous
    offending = {
        (module, name)
        for module, imported in graph.items()
        for name in imported
        if any(is_within(name, tasks) for tasks in TASK_MODULES)
    }
    assert offending == set()


def test_the_portal_never_imports_the_phone_side() -> None:
    graph = modules_under("portal")
    assert len(graph) >= 50
    offending = {
        (module, name)
        for module, imported in graph.items()
        for name in imported
        if is_within(name, "phones")
    }
    assert offending == set()


def test_only_the_simulator_command_imports_the_tooling() -> None:
    graph = modules_under("portal", "phones", "deviceupdate")
    assert len(graph) >= 100
    # simulate_phones runs the simulated fleet; nothing else of the apps, and nothing of
    # deviceupdate/. The demo package is the tooling's own (its make_demo_package command):
    # the tooling calls the app, never the reverse.
    assert importers_of(TOOLING, graph) == {"phones.management.commands.simulate_phones"}
    tooling = modules_under(TOOLING)
    assert importers_of(f"{TOOLING}.demo", tooling) == {
        f"{TOOLING}.management.commands.make_demo_package",
        f"{TOOLING}.simulator",
    }
    # The demo reaches the app through its services only (trusting its CA is audited).
    reached = {name for name in tooling[f"{TOOLING}.demo"] if is_within(name, "portal")}
    assert {name for name in reached if is_within(name, "portal.services")} != set()
    assert all(is_within(name, "portal.services") or is_within(name, "portal.models")
               for name in reached), reached  # fmt: skip


def is_selector(module: str) -> bool:
    return any(part == "selectors" for part in module.split("."))


def test_no_selector_imports_a_service() -> None:
    graph = modules_under("portal", "phones")
    selectors = {module for module in graph if is_selector(module)}
    assert {"portal.selectors", "portal.selectors.rules", "phones.selectors"} <= selectors
    offending = {
        (module, name)
        for module in selectors
        for name in graph[module]
        if is_within(name, "portal.services") or is_within(name, "phones.services")
    }
    assert offending == set()


# The models of each subdomain, by the module that must hold them. A model module holds
# no model named here for another module (fleet is not rollouts, and so on).
SUBDOMAIN_MODELS = {
    "portal.models.audit": {"AuditEntry"},
    "portal.models.fleet": {
        "DeviceControl",
        "DeviceGroup",
        "DeviceGroupMember",
        "MaintenanceWindow",
    },
    "portal.models.log_config": {"DeviceLogConfiguration"},
    "portal.models.packages": {"ImportJob", "UpdateFile", "UpdateVersion"},
    "portal.models.publishers": {"TrustedPublisher"},
    "portal.models.replication": {"ServerFile"},
    "portal.models.rollouts": {"Rollout", "RolloutWave"},
    "portal.models.rules": {"DeviceUpdateRule"},
    "portal.models.testdevices": {"TestDevice"},
    "portal.models.topology": {"Pool", "Server", "Site"},
}


def models_of(path: Path) -> set[str]:
    """The classes a model module defines at its top level."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {node.name for node in tree.body if isinstance(node, ast.ClassDef)}


def test_no_model_module_holds_another_subdomains_models() -> None:
    found = {
        module_name(path): models_of(path)
        for path in sorted((PROJECT_DIR / "portal" / "models").glob("*.py"))
        if path.name != "__init__.py"
    }
    assert set(SUBDOMAIN_MODELS) <= set(found)
    owner = {model: module for module, models in SUBDOMAIN_MODELS.items() for model in models}
    misplaced = {
        (module, model)
        for module, models in found.items()
        for model in models
        if owner.get(model, module) != module
    }
    assert misplaced == set()
    missing = {
        (module, model)
        for module, models in SUBDOMAIN_MODELS.items()
        for model in models - found[module]
    }
    assert missing == set()


def test_every_dispatched_task_is_registered_and_per_server_ones_name_their_server() -> None:
    calls = dispatched_task_names()
    assert {name for _, name, _ in calls} == {
        "portal.tasks.package_import_task",
        "portal.tasks.rollout_notify_task",
        "portal.tasks.server_check_store_task",
        "portal.tasks.server_remove_unused_task",
        "portal.tasks.server_replicate_task",
        "portal.tasks.webhook_deliver_task",
        "phones.tasks.server_logs_clear_task",
    }
    for module, name, keywords in calls:
        assert registered_task(name).name == name, module
        assert name in app.tasks, module
        if name in PER_SERVER_TASKS:
            assert "server_fqdn" in keywords, f"{module} queues {name} without server_fqdn"


def test_a_name_no_task_has_is_refused() -> None:
    with pytest.raises(KeyError):
        registered_task("portal.tasks.no_such_task")


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The module cycles of ``graph`` (its strongly connected components of two or more
    modules), an import of a name inside a module counting as one of that module."""

    def owner(name: str) -> str:
        while name and name not in graph:
            name = name.rpartition(".")[0]
        return name  # "" for a module outside the graph

    edges = {
        module: {owner(name) for name in imported} - {"", module}
        for module, imported in graph.items()
    }
    order: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(module: str) -> None:  # Tarjan's algorithm
        order[module] = low[module] = len(order)
        stack.append(module)
        for other in sorted(edges[module]):
            if other not in order:
                visit(other)
                low[module] = min(low[module], low[other])
            elif other in stack:
                low[module] = min(low[module], order[other])
        if low[module] == order[module]:
            component = []
            while True:
                top = stack.pop()
                component.append(top)
                if top == module:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for module in sorted(edges):
        if module not in order:
            visit(module)
    return cycles


def test_the_cycle_finder_finds_a_cycle() -> None:
    graph = {"a.x": {"a.y.f"}, "a.y": {"a.z"}, "a.z": {"a.x"}, "a.w": {"a.x"}}
    assert import_cycles(graph) == [["a.x", "a.y", "a.z"]]


def test_no_module_of_the_project_is_part_of_an_import_cycle() -> None:
    graph = modules_under("deviceupdate", "portal", "phones", TOOLING)
    graph = {module: imported for module, imported in graph.items() if ".migrations." not in module}
    assert import_cycles(graph) == []
