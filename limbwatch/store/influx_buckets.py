"""`limbwatch store init` for InfluxDB 2.x / 3.x (api=v2): the raw and derived buckets, through
`influxdb-client`'s buckets API. 2.x answers InfluxQL for every bucket through its virtual DBRP
mapping (`bucket` -> `bucket/autogen`), so no mapping is created; 3.x makes a database on its
first write. Tested only when a server is given (tests/test_influx_v2.py)."""

from __future__ import annotations

from limbwatch.store.http_status import StoreRefused
from limbwatch.store.influx_http import InfluxSettings
from limbwatch.store.samples import StoreUnavailable


def init_buckets(settings: InfluxSettings, *, retention_days: float | None = None) -> list[str]:
    """Create the raw bucket (samples kept `retention_days`, default forever) and the derived
    bucket (forever) when missing; what was done, line by line."""
    from influxdb_client import BucketRetentionRules, InfluxDBClient
    from influxdb_client.rest import ApiException
    from urllib3.exceptions import HTTPError

    where = f"InfluxDB {settings.base_url}"
    done = []
    with InfluxDBClient(url=settings.base_url, token=settings.token or "", org=settings.org,
                        timeout=int(settings.timeout_s * 1000), retries=False) as client:
        api = client.buckets_api()
        try:
            for name, days in ((settings.bucket, retention_days), (settings.derived, None)):
                if api.find_bucket_by_name(name) is not None:
                    done.append(f"bucket {name}: exists")
                    continue
                rules = [] if days is None else [
                    BucketRetentionRules(type="expire", every_seconds=round(days * 86400))]
                api.create_bucket(bucket_name=name, org=settings.org, retention_rules=rules)
                done.append(f"bucket {name}: created (retention "
                            f"{'forever' if days is None else f'{days:g} days'})")
        except ApiException as exc:
            if exc.status in (401, 403):
                raise StoreRefused(f"{where}: cannot create buckets: HTTP {exc.status} (the "
                                   "token is wrong or may not create buckets)") from None
            raise StoreUnavailable(f"{where}: cannot create buckets: HTTP {exc.status}: "
                                   f"{exc.reason}") from None
        except HTTPError as exc:
            raise StoreUnavailable(f"{where}: cannot create buckets: {exc}; is the server "
                                   "running?") from None
    return done
