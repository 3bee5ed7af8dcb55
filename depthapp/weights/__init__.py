"""Checkpoints of the learned backends: the registry, the cache, fetching and verification.

    from depthapp.weights import fetch, verify, RECORDS
    path = fetch("psmnet-kitti2015")           # downloads once, verified by SHA-256
"""

from .cache import (ENV_INDEX, ENV_MODELS, ENV_OFFLINE, ResolvedWeights, VerifyResult,
                    auto_fetch_enabled, cached_path, distribution_archive, fetch, fetch_hint,
                    iter_records, load_checkpoint, models_dir, offline_forced, pending_fetch,
                    resolve_weights,
                    set_auto_fetch, set_fetch_progress, sha256_file, unpacked_distribution, verify)
from .registry import (RECORDS, DistributionMember, LocalFile, PublishedMetric, Url,
                       WeightsRecord, get_record, records_for)

__all__ = ["DistributionMember", "ENV_INDEX", "ENV_MODELS", "ENV_OFFLINE", "LocalFile",
           "PublishedMetric", "RECORDS", "ResolvedWeights", "Url", "VerifyResult", "WeightsRecord",
           "auto_fetch_enabled", "cached_path", "distribution_archive", "fetch", "fetch_hint",
           "get_record", "iter_records", "load_checkpoint", "models_dir", "offline_forced",
           "pending_fetch", "records_for", "resolve_weights", "set_auto_fetch", "set_fetch_progress", "sha256_file",
           "unpacked_distribution", "verify"]
