"""A small Kustomize renderer for the features deploy/k8s uses, for machines without kubectl.

Supported: resources (files and directories), namespace, labels (metadata only),
patches (strategic merge by file or inline, JSON 6902 inline, with or without a
target), configMapGenerator with files and disableNameSuffixHash, generatorOptions
and images. Anything else raises UnsupportedFeature instead of being ignored.
"""

import copy
from pathlib import Path
from typing import Any

import yaml

Object = dict[str, Any]

SUPPORTED_KEYS = frozenset(
    {
        "apiVersion",
        "kind",
        "resources",
        "namespace",
        "labels",
        "patches",
        "configMapGenerator",
        "generatorOptions",
        "images",
    }
)
CLUSTER_SCOPED_KINDS = frozenset(
    {
        "Namespace",
        "ClusterRole",
        "ClusterRoleBinding",
        "CustomResourceDefinition",
        "PriorityClass",
        "StorageClass",
    }
)


class UnsupportedFeature(Exception):
    """Raised when a kustomization uses something this renderer does not implement."""


def render(directory: Path | str) -> list[Object]:
    """Return the objects the kustomization in `directory` builds."""
    root = Path(directory)
    spec = yaml.safe_load((root / "kustomization.yaml").read_text())
    unknown = set(spec) - SUPPORTED_KEYS
    if unknown:
        raise UnsupportedFeature(f"{root}: {sorted(unknown)}")
    objects: list[Object] = []
    for entry in spec.get("resources", []):
        path = root / entry
        if path.is_dir():
            objects.extend(render(path))
        else:
            objects.extend(_load_documents(path.read_text()))
    objects.extend(_generate_config_maps(root, spec))
    for patch in spec.get("patches", []):
        _apply_patch(root, patch, objects)
    if "namespace" in spec:
        for obj in objects:
            if obj["kind"] not in CLUSTER_SCOPED_KINDS:
                obj["metadata"]["namespace"] = spec["namespace"]
    for label_set in spec.get("labels", []):
        if label_set.get("includeSelectors") or label_set.get("includeTemplates"):
            raise UnsupportedFeature("labels with includeSelectors/includeTemplates")
        for obj in objects:
            obj["metadata"].setdefault("labels", {}).update(label_set["pairs"])
    for image in spec.get("images", []):
        for obj in objects:
            _set_image(obj, image)
    return objects


def _load_documents(text: str) -> list[Object]:
    return [doc for doc in yaml.safe_load_all(text) if doc]


def _generate_config_maps(root: Path, spec: Object) -> list[Object]:
    options = spec.get("generatorOptions", {})
    generated = []
    for generator in spec.get("configMapGenerator", []):
        merged = {**options, **generator.get("options", {})}
        if (
            not merged.get("disableNameSuffixHash")
            or "behavior" in generator
            or "literals" in generator
        ):
            raise UnsupportedFeature(
                "configMapGenerator needs files and disableNameSuffixHash only"
            )
        data = {}
        for source in generator["files"]:
            key, _, file_name = source.rpartition("=")
            path = root / file_name
            data[key or path.name] = path.read_text()
        metadata: Object = {"name": generator["name"]}
        if merged.get("labels"):
            metadata["labels"] = dict(merged["labels"])
        generated.append(
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata, "data": data}
        )
    return generated


def _apply_patch(root: Path, patch: Object, objects: list[Object]) -> None:
    text = (root / patch["path"]).read_text() if "path" in patch else patch["patch"]
    documents = _load_documents(text)
    if documents and isinstance(documents[0], list):
        for obj in _targets(objects, patch["target"]):
            for operation in documents[0]:
                _json_patch(obj, operation)
        return
    for document in documents:
        target = patch.get("target") or {
            "kind": document["kind"],
            "name": document["metadata"]["name"],
        }
        matches = _targets(objects, target)
        if not matches:
            raise UnsupportedFeature(f"patch matches nothing: {target}")
        for obj in matches:
            body = copy.deepcopy(document)
            body["metadata"]["name"] = obj["metadata"]["name"]
            _merge(obj, body)


def _targets(objects: list[Object], target: Object) -> list[Object]:
    if set(target) - {"kind", "name"}:
        raise UnsupportedFeature(f"patch target fields: {sorted(target)}")
    return [
        obj
        for obj in objects
        if obj["kind"] == target.get("kind", obj["kind"])
        and obj["metadata"]["name"] == target.get("name", obj["metadata"]["name"])
    ]


def _merge(base: Object, patch: Object) -> None:
    """Strategic-merge `patch` into `base`: maps and lists of named maps merge, lists replace."""
    for key, value in patch.items():
        if isinstance(key, str) and key.startswith("$"):
            raise UnsupportedFeature(f"patch directive {key}")
        current = base.get(key)
        if value is None:
            base.pop(key, None)
        elif isinstance(value, dict) and isinstance(current, dict):
            _merge(current, value)
        elif (
            isinstance(value, list)
            and isinstance(current, list)
            and _named(value)
            and _named(current)
        ):
            by_name = {item["name"]: item for item in current}
            for item in value:
                if item["name"] in by_name:
                    _merge(by_name[item["name"]], item)
                else:
                    current.append(copy.deepcopy(item))
        else:
            base[key] = copy.deepcopy(value)


def _named(items: list[Any]) -> bool:
    return bool(items) and all(isinstance(item, dict) and "name" in item for item in items)


def _json_patch(obj: Object, operation: Object) -> None:
    *parents, last = [
        part.replace("~1", "/").replace("~0", "~") for part in operation["path"].split("/")[1:]
    ]
    node: Any = obj
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    op = operation["op"]
    if isinstance(node, list):
        index = len(node) if last == "-" else int(last)
        if op == "add":
            node.insert(index, copy.deepcopy(operation["value"]))
        elif op == "replace":
            node[index] = copy.deepcopy(operation["value"])
        elif op == "remove":
            del node[index]
        else:
            raise UnsupportedFeature(f"json patch op {op}")
    elif op in ("add", "replace"):
        if op == "replace" and last not in node:
            raise KeyError(operation["path"])
        node[last] = copy.deepcopy(operation["value"])
    elif op == "remove":
        del node[last]
    else:
        raise UnsupportedFeature(f"json patch op {op}")


def _set_image(obj: Object, image: Object) -> None:
    pod = obj.get("spec", {}).get("template", {}).get("spec", {})
    for container in pod.get("containers", []) + pod.get("initContainers", []):
        name, tag = _split_image(container["image"])
        if name != image["name"]:
            continue
        new_name = image.get("newName", name)
        new_tag = image.get("newTag", tag)
        if "digest" in image:
            container["image"] = f"{new_name}@{image['digest']}"
        else:
            container["image"] = f"{new_name}:{new_tag}" if new_tag else new_name


def _split_image(reference: str) -> tuple[str, str | None]:
    name = reference.split("@", 1)[0]
    repository, _, tag = name.rpartition(":")
    if repository and "/" not in tag:
        return repository, tag
    return name, None
