"""The one place that reads the environment: every setting, typed, prefixed ``SIGNALROUTE_``."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from features.embedders import EmbedderName
from features.errors import ConfigError
from learner.anchor import DEFAULT_LEARNING_RULE, LearningRule

DEFAULT_REPLAY_DATA = Path("../shared/data/routerbench")
DEFAULT_BFCL_DATA = Path("../shared/data/bfcl")


DEFAULT_KEEP_ALIVE_S = 75
"""Seconds a server here keeps an idle client connection (the service's default, and the
replay pool's)."""


class LatencyProfile(BaseModel):
    """How fast one replayed model answers: a time to first token and a streaming pace, both
    drawn per request with log-normal jitter (``jitter`` is the log's standard deviation)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    ttft_ms: float = Field(ge=0, description="Median time to the first token (ms).")
    tokens_per_s: float = Field(gt=0, description="Median streaming pace (tokens per second).")
    jitter: float = Field(default=0.25, ge=0, le=2, description="Log-normal sigma of both.")
    requests_per_min: int | None = Field(
        default=None,
        ge=1,
        description="Rate limit the model reports in x-ratelimit-*-requests headers.",
    )


class DegradationEpisode(BaseModel):
    """A scheduled spell of trouble for one replayed model, in seconds since the pool
    started: ``slow`` multiplies its latency by ``factor``; ``errors`` answers ``rate`` of
    its requests with HTTP 500; ``rate_limit`` answers ``rate`` of them with HTTP 429 and
    Retry-After (and reports little headroom on the others). ``every_s`` repeats it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    model: str = Field(description="The replayed model id.")
    kind: Literal["slow", "errors", "rate_limit"] = Field(description="What goes wrong.")
    start_s: float = Field(ge=0, description="Start, seconds after the pool started.")
    duration_s: float = Field(gt=0, description="How long it lasts (seconds).")
    factor: float = Field(default=5.0, ge=1, description="Latency multiplier of a slow spell.")
    rate: float = Field(
        default=0.5, ge=0, le=1, description="Share of requests failed (errors, rate_limit)."
    )
    every_s: float | None = Field(
        default=None, gt=0, description="Repeat period (seconds); None: once."
    )


class ReplaySettings(BaseSettings):
    """Behaviour of the replay model pool (the demo and test pool).

    Fault rates are probabilities per request, drawn from one RNG seeded with ``seed``.
    """

    model_config = SettingsConfigDict(env_prefix="SIGNALROUTE_REPLAY_", extra="ignore")

    data: Path | None = Field(
        default=None,
        description="Folder holding the RouterBench CSVs; defaults to ../shared/data/routerbench.",
    )
    bfcl_data: Path | None = Field(
        default=None,
        description="Folder holding BFCL's recorded tool calls (outputs.tsv, prices.json, "
        "questions/), served as tool-calling arms; defaults to ../shared/data/bfcl, and "
        "without it the replay pool has no tool-calling arms.",
    )
    seed: int = Field(default=0, description="Seed of the fault draws and the judge's flips.")
    stream_chunk_chars: int = Field(default=16, ge=1, description="Characters per streamed chunk.")
    stream_chunks_per_s: float = Field(
        default=200.0, gt=0, description="Pace of a stream (chunks per second)."
    )
    latency_ms: float = Field(
        default=0.0, ge=0, description="Wait before the first byte of every answer."
    )
    error_rate: float = Field(
        default=0.0, ge=0, le=1, description="Share of requests answered with HTTP 500."
    )
    rate_limit_rate: float = Field(
        default=0.0,
        ge=0,
        le=1,
        description="Share of requests answered with HTTP 429 and Retry-After.",
    )
    retry_after_s: float = Field(
        default=1.0, ge=0, description="The Retry-After of an injected 429 (seconds)."
    )
    stall_rate: float = Field(
        default=0.0, ge=0, le=1, description="Share of streams that stall mid-way."
    )
    stall_ms: float = Field(default=5000.0, ge=0, description="How long a stall lasts.")
    cut_rate: float = Field(
        default=0.0, ge=0, le=1, description="Share of streams cut off mid-way."
    )
    model_faults: dict[str, str] = Field(
        default_factory=dict,
        description="Content fault per model id (repeat, refusal, language, broken_json, "
        "broken_code, injection), applied to every answer of that model; JSON in the "
        "environment.",
    )
    judge_accuracy: float = Field(
        default=0.9,
        ge=0,
        le=1,
        description="Probability that the replay judge's verdict is the recorded label "
        "(else it is flipped).",
    )
    profiles: dict[str, LatencyProfile] = Field(
        default_factory=dict,
        description="Latency profile per model id (ttft_ms, tokens_per_s, jitter, "
        "requests_per_min); a profiled model's answers take that long instead of latency_ms "
        "and stream_chunks_per_s. JSON in the environment.",
    )
    episodes: list[DegradationEpisode] = Field(
        default_factory=list,
        description="Scheduled degradation episodes (model, kind slow|errors|rate_limit, "
        "start_s, duration_s, factor, rate, every_s). JSON in the environment.",
    )

    def data_path(self) -> Path | None:
        """The data folder to load, or None when neither the setting nor the default exists."""
        if self.data is not None:
            return self.data
        return DEFAULT_REPLAY_DATA if DEFAULT_REPLAY_DATA.is_dir() else None

    def bfcl_data_path(self) -> Path | None:
        """The BFCL folder to load, or None when neither the setting nor the default exists
        (then the replay pool serves no tool-calling arms)."""
        if self.bfcl_data is not None:
            return self.bfcl_data
        return DEFAULT_BFCL_DATA if DEFAULT_BFCL_DATA.is_dir() else None


class Settings(BaseSettings):
    """Service settings. Every field can be set as ``SIGNALROUTE_<FIELD>``."""

    model_config = SettingsConfigDict(env_prefix="SIGNALROUTE_", extra="ignore")

    host: str = Field(default="127.0.0.1", description="Address to listen on.")
    port: int = Field(default=8000, ge=0, le=65535, description="Port to listen on.")
    database_url: str | None = Field(
        default=None,
        description="Postgres URL (pgvector required). Unset: an embedded server under data_dir.",
    )
    data_dir: Path = Field(
        default=Path(".signalroute"),
        description="Folder of the embedded Postgres server and of journals spooled while "
        "the store is down.",
    )
    pool_config: Path | None = Field(
        default=None,
        description="Model-pool YAML. Unset: the replay pool is served in-process and used.",
    )
    db_pool_size: int = Field(default=20, ge=2, le=200, description="Max store connections.")
    request_timeout_s: float = Field(
        default=60.0, gt=0, description="Longest wait for a provider's answer (seconds)."
    )
    connect_timeout_s: float = Field(
        default=5.0, gt=0, description="Longest wait to connect to a provider (seconds)."
    )
    keep_alive_s: int = Field(
        default=DEFAULT_KEEP_ALIVE_S,
        ge=1,
        description="How long an idle client connection is kept open. Longer than the 5 s "
        "most HTTP clients keep theirs, so a client never reuses a connection the service is "
        "closing at that moment.",
    )
    gc_young_threshold: int = Field(
        default=10_000,
        ge=0,
        description="Allocations between two young garbage collections in a serving process "
        "(Python's default: 700); the heap built at start-up is also frozen out of every "
        "collection (router/heap.py). 0 leaves Python's collector as it is.",
    )
    coalesce_writes: bool = Field(
        default=True,
        description="Send a response's head and body, and a provider request's head and body, "
        "in one socket write each instead of two (one wake-up of the reader, not two). Off "
        "only to measure what it saves.",
    )
    provider_network: Literal["httptools", "asyncio", "anyio"] = Field(
        default="httptools",
        description="How the router speaks HTTP to providers: its own HTTP/1.1 on asyncio's "
        "transports and httptools' parser (router.providers.http11), or httpx's transport "
        "(httpcore and h11) on asyncio's transports (router.providers.network) or on anyio, "
        "httpx's default. The same HTTP each way; httpx's transport costs the router more CPU "
        "per call (anyio most). Off the default only to measure it.",
    )
    journal_linger_ms: float = Field(
        default=50.0,
        ge=0,
        description="How long the background writer holds an accepted request's row while the "
        "request runs, so that the row and the request's decisions go to the store in one "
        "transaction, after the answer, instead of one of them beside the model call. A "
        "request running longer is logged when this passes; 0 logs it at once.",
    )
    journal_backlog: int = Field(
        default=2000,
        ge=0,
        description="Rows and journals the background writer may hold unwritten before new "
        "requests wait for it to catch up (each accepted request queues its row and, when it "
        "ends, its journal). Bounds the memory and what a crash could lose under a load the "
        "store cannot keep up with; 0: no bound.",
    )
    journal_write_timeout_s: float = Field(
        default=10.0,
        gt=0,
        description="How long one of the background writer's transactions may take. A store "
        "that hangs (takes connections, answers nothing) then counts as down: the queued "
        "journals go to the spool instead of waiting for it, and requests are not held at "
        "the door. A transaction stopped so is cancelled on the server, which psycopg gives "
        "up to 10 s more.",
    )
    store_read_timeout_s: float = Field(
        default=2.0,
        gt=0,
        description="How long a request waits for the store to answer a look-up on its way "
        "(its conversation's previous arm when this process does not hold it; its "
        "neighbours when the history index is off or not loaded). Past it the request goes "
        "on without it, as when the store is down, and the look-up is cancelled behind it.",
    )
    log_level: str = Field(default="info", description="Log level: debug, info, warning or error.")
    seed: int | None = Field(
        default=None, description="Seed of the router's RNG (arm draws); unset: from entropy."
    )
    exploration: Literal["epsilon", "squarecb", "softmax"] = Field(
        default="squarecb", description="How each stage's policy explores arms."
    )
    epsilon: float = Field(
        default=0.1,
        gt=0,
        le=1,
        description="epsilon exploration: the probability shared by the arms not predicted best.",
    )
    gamma_scale: float = Field(
        default=10.0,
        gt=0,
        description="squarecb exploration: how fast it concentrates on the best arm.",
    )
    learning_rate: float = Field(
        default=0.5, gt=0, description="Vowpal Wabbit's learning rate for every policy."
    )
    snapshot_every: int = Field(default=100, ge=1, description="Snapshot a policy every N updates.")
    role: Literal["standalone", "replica"] = Field(
        default="standalone",
        description="standalone: learns itself; replica: logs rewards for `signalroute learner`"
        " and follows its snapshots.",
    )
    policy_refresh_s: float = Field(
        default=2.0, gt=0, description="Replicas: how often to look for a newer snapshot."
    )
    knn_k: int = Field(default=20, ge=1, le=200, description="Neighbours for historical signals.")
    history_index: bool = Field(
        default=True,
        description="Answer the historical look-up from an in-process copy of the most recent "
        "query embeddings, kept fresh from the store (no round trip; exact search over the "
        "copy). False: ask the store on every request.",
    )
    history_index_rows: int = Field(
        default=4096,
        ge=1,
        le=1_000_000,
        description="Rows the in-process history index holds, all tenants together (the most "
        "recent ones). Each takes 1.5 KiB of vector plus its outcomes, allocated at start; a "
        "look-up compares the probe with every row of the tenant, so its time grows with it.",
    )
    history_index_refresh_ms: float = Field(
        default=200.0,
        gt=0,
        description="How often the history index reads the rows changed in the store (other "
        "replicas' requests, rewards recorded later): what a look-up sees is at most this old.",
    )
    anchor: bool = Field(
        default=True,
        description="Anchor the pre-generation and escalation stages to their rules (the arm "
        "with the best mean reward; accept what passed, escalate what failed) until the "
        "evidence says the policy's choice earns more.",
    )
    pre_rule: LearningRule = Field(
        default=DEFAULT_LEARNING_RULE,
        description="While learning, the pre-generation rule's arm: 'upper_bound' (the best "
        "mean plus 1.5 standard errors, an arm never rewarded first: no arm is left behind the "
        "first one to reach 20 rewards) or 'best_mean' (the best mean reward among arms "
        "rewarded 20 times; before, the policy explores alone). Frozen, the best mean.",
    )
    embedder: EmbedderName = Field(
        default="hashing",
        description="Query embedding for historical neighbours and task categories: 'hashing' "
        "(n-gram hashing, microseconds) or 'minilm' (all-MiniLM-L6-v2 on the CPU, a few ms; "
        "needs the 'semantic' extra). The store keeps which embedder wrote each vector and "
        "compares a query only with vectors of its own embedder.",
    )
    pre_credit: Literal["answer", "request"] = Field(
        default="answer",
        description="What the pre-generation decision is rewarded for: its own answer, or the "
        "whole request it led to (the delivered answer against everything spent on it).",
    )
    max_attempts: int = Field(default=3, ge=1, description="Arms tried before a request fails.")
    cost_ref_usd: float = Field(
        default=0.01,
        gt=0,
        description="Request cost at which the reward's cost term cost / (cost + ref) is one "
        "half: near zero each cost_ref_usd spent costs lambda_cost of quality.",
    )
    latency_ref_ms: float = Field(
        default=10_000.0,
        gt=0,
        description="Latency at which the reward's latency term is one half.",
    )
    health_window_s: float = Field(
        default=300.0,
        gt=0,
        description="The window an arm's error rate (a system signal, and the circuit "
        "breaker's rate) is measured over (seconds).",
    )
    latency_half_life_s: float = Field(
        default=60.0,
        gt=0,
        description="Without new calls, an arm's latency EWMA (a system signal) returns "
        "toward its median latency, halving the gap every this many seconds.",
    )
    circuit_cooldown_s: float = Field(
        default=30.0,
        gt=0,
        description="How long an opened circuit stays open before one probe call (seconds).",
    )
    tenant_budget_usd: float | None = Field(
        default=None, gt=0, description="Spend limit of each tenant (USD, over all time)."
    )
    session_budget_usd: float | None = Field(
        default=None, gt=0, description="Spend limit of each session of a tenant (USD)."
    )
    auth: Literal["none", "keys"] = Field(
        default="none",
        description="'keys': every request needs an API key, whose tenant it acts for. "
        "'none': local single-user mode, every caller trusted (logged as a warning).",
    )
    shared_tenants: list[str] = Field(
        default_factory=list,
        description="With auth=keys each tenant learns from its own rewards only; the tenants "
        'named here (JSON list in the environment, e.g. \'["acme", "beta"]\'; \'["*"]\': '
        "every tenant) share one policy per stage instead, learning from each other's rewards.",
    )
    tenant_min_rewards: int = Field(
        default=50,
        ge=0,
        description="With auth=keys: counted rewards a tenant needs at a stage before it gets "
        "its own policy there (a copy of the prior that learns its rewards, the earlier ones "
        "included); until then the frozen prior serves it.",
    )
    tenant_prior_version: int | None = Field(
        default=None,
        ge=1,
        description="With auth=keys: the snapshot version of each stage's shared policy that "
        "the tenants' prior is a frozen copy of (a warm start); unset: a cold prior.",
    )
    tenant_policies_in_memory: int = Field(
        default=64,
        ge=1,
        description="With auth=keys: tenants' own policies held in memory (a VW workspace of "
        "about 9 MB each); beyond it the least recently used tenant's are snapshotted and "
        "freed, and restored from their snapshots on its next request.",
    )
    tenant_snapshots_kept: int = Field(
        default=3,
        ge=1,
        description="With auth=keys: snapshot versions kept of each tenant's own policy "
        "(older ones are deleted as new ones are saved).",
    )
    tenants_in_memory: int = Field(
        default=4096,
        ge=1,
        description="With auth=keys: tenants whose reward counts and anchoring evidence are "
        "held in memory (least recently used evicted first).",
    )
    feedback_window_days: float = Field(
        default=7.0,
        gt=0,
        description="Feedback on a decision older than this is refused (422).",
    )
    metrics_token: SecretStr | None = Field(
        default=None,
        description="When set, GET /metrics needs 'Authorization: Bearer <this token>' "
        "(its labels name tenants and their spend); unset: /metrics is open, like /healthz. "
        "It is also the operator's token of the dashboard: with SIGNALROUTE_AUTH=keys, "
        "/dashboard shows every tenant's traffic to it, and a tenant's own to an API key.",
    )
    dashboard_reports: Path = Field(
        default=Path("signalroute-replay"),
        description="Folder where GET /dashboard looks for the newest offline-evaluation "
        "report (a replay.json that `signalroute evaluate --out` wrote, in it or below it); "
        "operators only.",
    )
    log_format: Literal["json", "text"] = Field(
        default="json", description="Log lines as JSON objects (with request ids) or text."
    )
    max_body_bytes: int = Field(
        default=4 * 1024 * 1024,
        ge=1024,
        description="Largest request body accepted (bytes); a larger one gets 413.",
    )
    max_messages: int = Field(
        default=1000, ge=1, description="Most messages a chat request may hold (else 400)."
    )
    max_prompt_chars: int = Field(
        default=1_000_000,
        ge=1,
        description="Most text characters a request's messages may hold together (else 413).",
    )
    otel_exporter: Literal["none", "otlp"] = Field(
        default="none",
        description="OpenTelemetry traces: 'none' (off, costs nothing) or 'otlp' (spans of "
        "each request, decision, provider call and store write sent over OTLP/HTTP to "
        "otel_endpoint; needs the 'otel' extra).",
    )
    otel_endpoint: str = Field(
        default="http://localhost:4318/v1/traces",
        description="Where OTLP/HTTP spans go (a collector's traces URL).",
    )
    otel_headers: dict[str, str] = Field(
        default_factory=dict,
        description="HTTP headers sent with each export, e.g. a collector's API key; JSON in "
        "the environment.",
    )
    otel_service_name: str = Field(
        default="signalroute", min_length=1, description="The traces' service.name."
    )
    otel_sample_ratio: float = Field(
        default=1.0,
        ge=0,
        le=1,
        description="Share of requests traced (by trace id; a traced request is traced whole).",
    )
    otel_timeout_s: float = Field(default=10.0, gt=0, description="Timeout of one export.")
    readiness_ttl_s: float = Field(
        default=10.0,
        gt=0,
        description="How long /readyz trusts its last look at each arm's address; an older "
        "look is renewed in the background while /readyz answers from it.",
    )
    replay: ReplaySettings = Field(
        default_factory=ReplaySettings,
        description="The replay model pool (the demo pool), set as SIGNALROUTE_REPLAY_<FIELD>.",
    )


def load_settings(**overrides: object) -> Settings:
    """The settings from the environment (and ``overrides``, e.g. command-line options).

    Raises ConfigError listing every invalid variable at once, the replay pool's included
    (pydantic would stop at the first class that fails, with a traceback).
    """
    problems: list[str] = []
    replay: ReplaySettings | None = None
    try:
        replay = ReplaySettings()
    except ValidationError as exc:
        problems += _problems(exc)
    try:
        settings = Settings(
            **overrides,  # type: ignore[arg-type]
            replay=replay if replay is not None else ReplaySettings.model_construct(),
        )
    except ValidationError as exc:
        problems += _problems(exc)
    if problems:
        raise _config_error(problems)
    return settings


def invalid_settings(error: ValidationError) -> ConfigError:
    """A settings class's validation error as a ConfigError naming each variable."""
    return _config_error(_problems(error))


_PREFIXES = {
    cls.__name__: str(cls.model_config.get("env_prefix", "")) for cls in (Settings, ReplaySettings)
}


def _config_error(problems: list[str]) -> ConfigError:
    if len(problems) == 1:
        return ConfigError(f"invalid setting: {problems[0]}")
    listed = "".join(f"\n  - {p}" for p in problems)
    return ConfigError(f"{len(problems)} invalid settings:{listed}")


def _problems(error: ValidationError) -> list[str]:
    prefix = _PREFIXES.get(error.title, "SIGNALROUTE_")
    found = []
    for entry in error.errors():
        variable = prefix + "_".join(str(part) for part in entry["loc"]).upper()
        secret = any(word in variable for word in ("TOKEN", "URL", "KEY"))
        shown = "" if secret else f" (got {entry.get('input')!r})"
        found.append(f"{variable}: {entry['msg']}{shown}")
    return found
