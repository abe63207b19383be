"""One scheduler at a time: a lease in Redis (``SET NX PX``), renewed while held.

Only the holder of the token can renew or release it (compare-and-set in a Lua script), so
a paused process that lost its lease cannot take it back from the new leader by renewing.
Without Redis (embedded deployment) there is one process, and it leads.
"""

from __future__ import annotations

import uuid

import redis.asyncio as aioredis

RENEW = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('pexpire', KEYS[1], ARGV[2])
end
return 0
"""
RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('del', KEYS[1])
end
return 0
"""


class LocalLeader:
    is_leader = True

    async def lead(self) -> bool:
        return True

    async def release(self) -> None:
        return None


class RedisLeader:
    def __init__(self, url: str, key: str, ttl: float = 10.0):
        self.client = aioredis.Redis.from_url(url)
        self.key = key
        self.ttl_ms = int(ttl * 1000)
        self.token = uuid.uuid4().hex
        self.is_leader = False

    async def lead(self) -> bool:
        """Take or renew the lease; True while this process is the leader."""
        if self.is_leader:
            self.is_leader = bool(await self.client.eval(RENEW, 1, self.key, self.token, self.ttl_ms))
        if not self.is_leader:
            self.is_leader = bool(await self.client.set(self.key, self.token, nx=True, px=self.ttl_ms))
        return self.is_leader

    async def release(self) -> None:
        try:
            if self.is_leader:
                await self.client.eval(RELEASE, 1, self.key, self.token)
        finally:
            self.is_leader = False
            await self.client.aclose()
