"""The test data most tests make, in one place (factory-boy): device classes, rules,
phones (inventory rows) and rollouts.

Rules and phones are rows made directly (a test sets up the state it needs); a rollout
is planned through ``rollout_plan``, so it is always one the service would make.
"""

from __future__ import annotations

import uuid
from typing import Any

import factory
from django.utils import timezone
from factory.django import DjangoModelFactory

from phones.choices import Channel, DeviceState
from phones.models import Device
from portal.device_class import RuleClass
from portal.models import DeviceUpdateRule, Pool, Rollout
from portal.services.audit import Actor
from portal.services.rollout_plans import RolloutPlan, WavePlan
from portal.services.rollouts import rollout_plan

# --- Device classes and rule Ids ------------------------------------------------------

CX600 = RuleClass("UCPhone", "Polycom", "CX600", "Rev-1", "ENU", "CPE")
CX700 = RuleClass("UCPhone", "Polycom", "CX700", "Rev-1", "ENU", "CPE")
AASTRA = RuleClass("UCPhone", "Aastra", "6725ip", "Rev-2", "DEU", "Firmware")
# The device class of CX600 without its update type, as a phone reports it.
CX600_DEVICE = {k: v for k, v in vars(CX600).items() if k != "update_type"}
# The demo package's CX600 rule Id (deviceupdate_devtools.demo), and a second one.
RULE_A = uuid.UUID("2de8cbf6-8a1e-4bc0-9d9e-0b2b5a1c1f11")
RULE_B = uuid.UUID("7f3c1d2e-4b5a-4c6d-8e9f-0a1b2c3d4e5f")


# --- Rules ------------------------------------------------------------------------------


class RuleFactory(DjangoModelFactory[DeviceUpdateRule]):
    """A rule of the first pool (the default topology's), CX600 and RULE_A unless told;
    ``device_class`` sets the six class fields at once."""

    class Meta:
        model = DeviceUpdateRule

    class Params:
        device_class = CX600

    pool = factory.LazyFunction(lambda: Pool.objects.order_by("pk").first())
    rule_id = RULE_A
    device_type = factory.LazyAttribute(lambda o: o.device_class.device_type)
    brand = factory.LazyAttribute(lambda o: o.device_class.brand)
    model = factory.LazyAttribute(lambda o: o.device_class.model)
    revision = factory.LazyAttribute(lambda o: o.device_class.revision)
    locale = factory.LazyAttribute(lambda o: o.device_class.locale)
    update_type = factory.LazyAttribute(lambda o: o.device_class.update_type)
    pending_version = ""
    approved_version = ""
    restore_version = ""
    restored = False


# --- Phones -----------------------------------------------------------------------------


class DeviceFactory(DjangoModelFactory[Device]):
    """A phone of the inventory, a CX600 up to date, seen now on the internal listener;
    its identity follows its MAC (``MAC:0004F2000001``…)."""

    class Meta:
        model = Device

    mac = factory.Sequence(lambda n: f"0004F2{n + 1:06X}")
    identity = factory.LazyAttribute(lambda o: f"MAC:{o.mac}")
    device_type = CX600.device_type
    brand = CX600.brand
    model = CX600.model
    revision = CX600.revision
    locale = CX600.locale
    installed = factory.LazyFunction(dict)
    state = DeviceState.UP_TO_DATE
    first_seen = factory.LazyFunction(timezone.now)
    last_seen = factory.SelfAttribute("first_seen")
    last_channel = Channel.INTERNAL
    last_server = "fe01.example.org"


# --- Rollouts ---------------------------------------------------------------------------

SETUP = Actor.system("test setup")


class RolloutFactory(factory.Factory[Rollout]):
    """A rollout planned through ``rollout_plan``: ``waves`` (WavePlans, default one of
    100 %) and any gate of ``RolloutPlan`` as keywords."""

    class Meta:
        model = Rollout

    rule = factory.SubFactory(RuleFactory, pending_version="4.0.7577.5000")
    waves: Any = (WavePlan(percent=100),)

    @classmethod
    def _create(cls, model_class: type[Rollout], *args: Any, **kwargs: Any) -> Rollout:
        rule, waves = kwargs.pop("rule"), kwargs.pop("waves")
        actor = kwargs.pop("actor", SETUP)
        now = kwargs.pop("now", None)
        plan = RolloutPlan(waves=tuple(waves), **kwargs)
        return rollout_plan(rule=rule, plan=plan, actor=actor, now=now)
