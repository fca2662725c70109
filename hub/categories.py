"""One harmonised list of CSEA categories, and versioned crosswalks into it.

A crosswalk maps a source scheme's labels (UK A/B/C, NCMEC incident types, EU DSA
keywords, platform labels) to harmonised codes. A label that is in neither the mappings
nor the deliberate ``unmapped`` list is reported, never guessed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError

from hub.datafiles import StrictModel, read_yaml
from hub.errors import CatalogueError, HubError


class UnmappedCategory(HubError):
    """A source label that no crosswalk maps."""


class CategorySpec(StrictModel):
    code: str = Field(pattern=r"^[a-z][a-z0-9_]{1,63}$")
    name: str = Field(min_length=2)
    parent: str | None = None
    kind: Literal["material", "behaviour", "group"]
    description: str = Field(min_length=10)


class Mapping(StrictModel):
    source: str = Field(min_length=1)
    target: str
    note: str | None = None


class Unmapped(StrictModel):
    source: str = Field(min_length=1)
    reason: str = Field(min_length=5)


class CrosswalkSpec(StrictModel):
    scheme: str = Field(pattern=r"^[a-z][a-z0-9_]{1,63}$")
    name: str
    version: str
    valid_from: date | None = None
    description: str | None = None
    mappings: tuple[Mapping, ...] = Field(min_length=1)
    unmapped: tuple[Unmapped, ...] = ()


def normalise_label(label: str) -> str:
    """How labels are compared: trimmed, inner white space folded, case-folded."""
    return " ".join(label.split()).casefold()


@dataclass(frozen=True)
class Crosswalk:
    scheme: str
    name: str
    version: str
    targets: dict[str, str]  # normalised source label -> harmonised code
    deliberately_unmapped: dict[str, str]  # normalised source label -> reason


@dataclass(frozen=True)
class CategoryScheme:
    version: str
    categories: dict[str, CategorySpec]
    crosswalks: dict[str, Crosswalk]

    def map(self, scheme: str, label: str) -> str | None:
        """The harmonised code for ``label`` of ``scheme``; None if deliberately unmapped."""
        crosswalk = self.crosswalks.get(scheme)
        if crosswalk is None:
            raise UnmappedCategory(f"no crosswalk for category scheme {scheme!r}")
        key = normalise_label(label)
        if key in crosswalk.targets:
            return crosswalk.targets[key]
        if key in crosswalk.deliberately_unmapped:
            return None
        raise UnmappedCategory(
            f"unmapped category {label!r} in scheme {scheme!r} (crosswalk {crosswalk.version}): "
            "add it to the crosswalk, mapped or deliberately unmapped"
        )

    def ancestors(self, code: str) -> list[str]:
        chain = []
        parent = self.categories[code].parent
        while parent:
            chain.append(parent)
            parent = self.categories[parent].parent
        return chain


def load_categories(data_dir: Path) -> CategoryScheme:
    """Read the harmonised list and every crosswalk; raise with every problem found."""
    problems: list[str] = []
    folder = data_dir / "categories"
    harmonised_path = folder / "harmonised.yaml"
    raw = read_yaml(harmonised_path, problems) or {}
    categories: dict[str, CategorySpec] = {}
    for index, entry in enumerate(raw.get("categories", []) if isinstance(raw, dict) else []):
        where = f"{harmonised_path}: category #{index + 1}"
        try:
            spec = CategorySpec.model_validate(entry)
        except ValidationError as exc:
            problems.extend(f"{where}: {err['loc']}: {err['msg']}" for err in exc.errors())
            continue
        if spec.code in categories:
            problems.append(f"{harmonised_path}: category {spec.code!r}: duplicate code")
        categories[spec.code] = spec
    for spec in categories.values():
        if spec.parent is not None and spec.parent not in categories:
            problems.append(f"{harmonised_path}: category {spec.code!r}: unknown parent {spec.parent!r}")
    for spec in categories.values():  # cycles
        seen, parent = {spec.code}, spec.parent
        while parent and parent in categories:
            if parent in seen:
                problems.append(f"{harmonised_path}: category {spec.code!r}: parent cycle")
                break
            seen.add(parent)
            parent = categories[parent].parent

    crosswalks: dict[str, Crosswalk] = {}
    for path in sorted((folder / "crosswalks").glob("*.yaml")):
        raw_walk = read_yaml(path, problems)
        try:
            walk = CrosswalkSpec.model_validate(raw_walk)
        except ValidationError as exc:
            problems.extend(f"{path}: {err['loc']}: {err['msg']}" for err in exc.errors())
            continue
        targets: dict[str, str] = {}
        for mapping in walk.mappings:
            key = normalise_label(mapping.source)
            if mapping.target not in categories:
                problems.append(
                    f"{path}: mapping {mapping.source!r}: unknown harmonised category {mapping.target!r}"
                )
            if key in targets:
                problems.append(f"{path}: mapping {mapping.source!r}: label listed twice")
            targets[key] = mapping.target
        unmapped = {normalise_label(u.source): u.reason for u in walk.unmapped}
        for key in set(unmapped) & set(targets):
            problems.append(f"{path}: label {key!r} is both mapped and unmapped")
        if walk.scheme in crosswalks:
            problems.append(f"{path}: scheme {walk.scheme!r} defined twice")
        crosswalks[walk.scheme] = Crosswalk(walk.scheme, walk.name, walk.version, targets, unmapped)

    if problems:
        raise CatalogueError(problems)
    version = str(raw.get("version", "")) if isinstance(raw, dict) else ""
    return CategoryScheme(version, categories, crosswalks)
