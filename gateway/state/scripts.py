"""The Lua scripts of the Redis backend: each check-and-write is one script, so it runs
atomically in Redis whatever other processes do (never check-then-set from Python).

Every script gets the key prefix as ``ARGV[1]`` and its own arguments after it, and reads
the time from Redis (``TIME``), so every process judges expiry by one clock. Keys (under
the prefix; ``\\0`` separates a scope from a path, since neither holds a NUL):

* ``lock:<token>``: a hash per lock, expiring with it; ``lockcreated:<token>``: a set of
  the paths created under it.
* ``lockpaths:<scope>``: a sorted set, all scores 0, of ``<root>\\0<token>`` per lock:
  ZRANGEBYLEX finds the locks at one path and the ones below it without KEYS. Members of
  expired locks are removed whenever a script meets them.
* ``lockowner:<principal>`` and ``locks``: sorted sets of tokens scored by expiry (ms), for
  the per-principal cap and the count; expired members are removed by score.
* ``props:<scope>\\0<key>``: a hash of a resource's dead properties; ``propkeys:<scope>``:
  a sorted set (scores 0) of the keys that have some, for the prefix forms.
* ``noise:<scope>\\0<key>``: a hash (``meta`` JSON, ``data``), expiring with its TTL;
  ``noiseidx:<scope>`` (key by expiry), ``noisecharge:<scope>`` (key -> bytes charged),
  ``noisetotal:<scope>``: the byte accounting of the area.
* ``guard:<scope>\\0<key>``: a write guard (SET NX PX, released by ``GUARD_RELEASE``).

The sorted sets and counters get the latest expiry of what they index, so an idle scope
leaves nothing behind. Scripts touch keys they compute, which standalone Redis and Valkey
allow; Redis Cluster is not supported.
"""

from __future__ import annotations

from gateway.state.base import ENTRY_OVERHEAD

PRELUDE = """
local P = ARGV[1]
local SEP = '\\0'
local clock = redis.call('TIME')
local NOW = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local ALL = P .. 'locks'

local function lock_key(token) return P .. 'lock:' .. token end
local function created_key(token) return P .. 'lockcreated:' .. token end
local function paths_key(scope) return P .. 'lockpaths:' .. scope end
local function owner_key(principal) return P .. 'lockowner:' .. principal end

local function extend(key, at)
  if redis.call('PTTL', key) < 0 then
    redis.call('PEXPIREAT', key, at)
  else
    redis.call('PEXPIREAT', key, at, 'GT')
  end
end

local function hash(flat)
  local t = {}
  for i = 1, #flat, 2 do t[flat[i]] = flat[i + 1] end
  return t
end

local function remove_lock(l)
  redis.call('DEL', lock_key(l.token), created_key(l.token))
  redis.call('ZREM', paths_key(l.scope), l.root .. SEP .. l.token)
  redis.call('ZREM', owner_key(l.principal), l.token)
  redis.call('ZREM', ALL, l.token)
end

local function load(token)
  local flat = redis.call('HGETALL', lock_key(token))
  if #flat == 0 then return nil end
  local l = hash(flat)
  if tonumber(l.expires) <= NOW then remove_lock(l) return nil end
  return l
end

local function members(scope, min, max)
  local found = {}
  local pk = paths_key(scope)
  for _, m in ipairs(redis.call('ZRANGEBYLEX', pk, min, max)) do
    local l = load(string.sub(m, string.find(m, SEP, 1, true) + 1))
    if l then table.insert(found, l) else redis.call('ZREM', pk, m) end
  end
  return found
end

local function at(scope, path)
  return members(scope, '[' .. path .. SEP, '(' .. path .. '\\1')
end

local function under(scope, path)
  if path == '' then return members(scope, '[\\1', '+') end
  return members(scope, '[' .. path .. '/', '(' .. path .. '0')
end

local function ancestors(path)
  local found = {}
  if path == '' then return found end
  table.insert(found, '')
  local i = 0
  while true do
    i = string.find(path, '/', i + 1, true)
    if not i then break end
    table.insert(found, string.sub(path, 1, i - 1))
  end
  return found
end

local function covering(scope, path)
  local found = {}
  for _, a in ipairs(ancestors(path)) do
    for _, l in ipairs(at(scope, a)) do
      if l.depth == 'infinity' then table.insert(found, l) end
    end
  end
  for _, l in ipairs(at(scope, path)) do table.insert(found, l) end
  return found
end

local function reply(locks)
  for _, l in ipairs(locks) do l.created = redis.call('SMEMBERS', created_key(l.token)) end
  return cjson.encode(locks)
end

local function props_key(scope, key) return P .. 'props:' .. scope .. SEP .. key end
local function propkeys(scope) return P .. 'propkeys:' .. scope end

local function set_props(scope, key, flat)
  local k = props_key(scope, key)
  redis.call('DEL', k)
  if #flat == 0 then redis.call('ZREM', propkeys(scope), key) return end
  for i = 1, #flat, 200 do
    redis.call('HSET', k, unpack(flat, i, math.min(i + 199, #flat)))
  end
  redis.call('ZADD', propkeys(scope), 0, key)
end

local function prefix_range(p)
  if p == '' then return '-', '+' end
  local q = p
  while #q > 0 do
    local b = string.byte(q, #q)
    if b < 255 then return '[' .. p, '(' .. string.sub(q, 1, #q - 1) .. string.char(b + 1) end
    q = string.sub(q, 1, #q - 1)
  end
  return '[' .. p, '+'
end

local function noise_keys(scope)
  return P .. 'noiseidx:' .. scope, P .. 'noisecharge:' .. scope, P .. 'noisetotal:' .. scope
end
local function noise_entry(scope, key) return P .. 'noise:' .. scope .. SEP .. key end

local function noise_pop(scope, key)
  local idx, charge, total = noise_keys(scope)
  local c = redis.call('HGET', charge, key)
  if not c then return nil end
  local e = noise_entry(scope, key)
  local flat = redis.call('HGETALL', e)
  redis.call('DEL', e)
  redis.call('HDEL', charge, key)
  redis.call('ZREM', idx, key)
  redis.call('DECRBY', total, c)
  return flat
end

local function noise_prune(scope)
  local idx = noise_keys(scope)
  for _, key in ipairs(redis.call('ZRANGEBYSCORE', idx, '-inf', NOW)) do
    noise_pop(scope, key)
  end
end

local function noise_keep(scope, key, meta, data, ttl_ms, max_bytes)
  local idx, charge, total = noise_keys(scope)
  noise_pop(scope, key)
  local c = OVERHEAD + (data and #data or 0)
  local used = tonumber(redis.call('GET', total) or '0')
  while used + c > max_bytes do
    local oldest = redis.call('ZRANGE', idx, 0, 0)
    if #oldest == 0 then break end
    noise_pop(scope, oldest[1])
    used = tonumber(redis.call('GET', total) or '0')
  end
  if used + c > max_bytes then data = nil; c = OVERHEAD end
  local e = noise_entry(scope, key)
  local exp = NOW + ttl_ms
  if data then
    redis.call('HSET', e, 'meta', meta, 'data', data)
  else
    redis.call('HSET', e, 'meta', meta)
  end
  redis.call('PEXPIREAT', e, exp)
  redis.call('ZADD', idx, exp, key)
  redis.call('HSET', charge, key, c)
  redis.call('INCRBY', total, c)
  extend(idx, exp)
  extend(charge, exp)
  extend(total, exp)
  return data ~= nil
end
""".replace("OVERHEAD", str(ENTRY_OVERHEAD))

# ARGV: 2 scope, 3 root, 4 depth, 5 exclusive (1/0), 6 owner, 7 principal, 8 timeout (ms),
# 9 is_dir (1/0), 10 token, 11 max per resource, 12 max per principal
ACQUIRE = """
local scope, root, depth, excl = ARGV[2], ARGV[3], ARGV[4], ARGV[5] == '1'
for _, a in ipairs(ancestors(root)) do
  for _, l in ipairs(at(scope, a)) do
    if l.depth == 'infinity' and (excl or l.exclusive == '1') then
      return {'conflict', l.root}
    end
  end
end
local here = at(scope, root)
for _, l in ipairs(here) do
  if excl or l.exclusive == '1' then return {'conflict', l.root} end
end
if depth == 'infinity' then
  for _, l in ipairs(under(scope, root)) do
    if excl or l.exclusive == '1' then return {'conflict', l.root} end
  end
end
if #here >= tonumber(ARGV[11]) then return {'resource', tostring(#here)} end
local ok = owner_key(ARGV[7])
redis.call('ZREMRANGEBYSCORE', ok, '-inf', NOW)
local held = redis.call('ZCARD', ok)
if held >= tonumber(ARGV[12]) then return {'principal', tostring(held)} end
local token = ARGV[10]
local exp = NOW + tonumber(ARGV[8])
local key = lock_key(token)
redis.call('HSET', key, 'token', token, 'scope', scope, 'root', root, 'depth', depth,
  'exclusive', ARGV[5], 'owner', ARGV[6], 'principal', ARGV[7], 'timeout', ARGV[8],
  'expires', exp, 'is_dir', ARGV[9])
redis.call('PEXPIREAT', key, exp)
local pk = paths_key(scope)
redis.call('ZADD', pk, 0, root .. SEP .. token)
extend(pk, exp)
redis.call('ZADD', ok, exp, token)
extend(ok, exp)
redis.call('ZADD', ALL, exp, token)
extend(ALL, exp)
return {'ok', reply({load(token)})}
"""

# ARGV: 2 token, 3 timeout (ms)
REFRESH = """
local l = load(ARGV[2])
if not l then return false end
local exp = NOW + tonumber(ARGV[3])
redis.call('HSET', lock_key(l.token), 'timeout', ARGV[3], 'expires', exp)
redis.call('PEXPIREAT', lock_key(l.token), exp)
redis.call('PEXPIREAT', created_key(l.token), exp)
redis.call('ZADD', owner_key(l.principal), exp, l.token)
extend(owner_key(l.principal), exp)
redis.call('ZADD', ALL, exp, l.token)
extend(ALL, exp)
extend(paths_key(l.scope), exp)
return reply({load(l.token)})
"""

# ARGV: 2 token, 3 principal -> 1 released, 0 no such lock, -1 another principal's
RELEASE = """
local l = load(ARGV[2])
if not l then return 0 end
if l.principal ~= ARGV[3] then return -1 end
remove_lock(l)
return 1
"""

# ARGV: 2 token
GET = """
local l = load(ARGV[2])
if not l then return false end
return reply({l})
"""

# ARGV: 2 scope, 3 path
COVERING = "return reply(covering(ARGV[2], ARGV[3]))"
BELOW = "return reply(under(ARGV[2], ARGV[3]))"

# ARGV: 2 scope, 3 path, 4 recursive (1/0)
DROP = """
local scope, path, rec = ARGV[2], ARGV[3], ARGV[4] == '1'
local gone = at(scope, path)
if rec then
  for _, l in ipairs(under(scope, path)) do table.insert(gone, l) end
end
for _, l in ipairs(gone) do remove_lock(l) end
for _, l in ipairs(covering(scope, path)) do
  local ck = created_key(l.token)
  redis.call('SREM', ck, path)
  if rec then
    for _, p in ipairs(redis.call('SMEMBERS', ck)) do
      if path == '' or string.sub(p, 1, #path + 1) == path .. '/' then
        redis.call('SREM', ck, p)
      end
    end
  end
end
return #gone
"""

# ARGV: 2 token, 3 path
NOTE_CREATED = """
local l = load(ARGV[2])
if not l then return 0 end
redis.call('SADD', created_key(l.token), ARGV[3])
redis.call('PEXPIREAT', created_key(l.token), l.expires)
return 1
"""

COUNT = """
redis.call('ZREMRANGEBYSCORE', ALL, '-inf', NOW)
return redis.call('ZCARD', ALL)
"""

# ARGV: 2 scope, 3 key, 4 max bytes, 5 JSON object to set, 6 JSON array to remove
PROPS_PATCH = """
local k = props_key(ARGV[2], ARGV[3])
local props = hash(redis.call('HGETALL', k))
for _, name in ipairs(cjson.decode(ARGV[6])) do props[name] = nil end
for name, value in pairs(cjson.decode(ARGV[5])) do props[name] = value end
local size, flat = 0, {}
for name, value in pairs(props) do
  size = size + #name + #value
  table.insert(flat, name)
  table.insert(flat, value)
end
if size > tonumber(ARGV[4]) then return {'limit', tostring(size)} end
set_props(ARGV[2], ARGV[3], flat)
return {'ok', flat}
"""

# ARGV: 2 scope, 3 src, 4 dst, 5 move (1/0)
PROPS_COPY = """
if ARGV[3] == ARGV[4] then return 0 end
set_props(ARGV[2], ARGV[4], redis.call('HGETALL', props_key(ARGV[2], ARGV[3])))
if ARGV[5] == '1' then set_props(ARGV[2], ARGV[3], {}) end
return 1
"""

# ARGV: 2 scope, 3 key
PROPS_DELETE = "set_props(ARGV[2], ARGV[3], {}) return 1"

# ARGV: 2 scope, 3 src prefix, 4 dst prefix, 5 move (1/0)
PROPS_COPY_PREFIX = """
local scope, src, dst = ARGV[2], ARGV[3], ARGV[4]
local pk = propkeys(scope)
local lo, hi = prefix_range(src)
local found = {}
for _, key in ipairs(redis.call('ZRANGEBYLEX', pk, lo, hi)) do
  table.insert(found, {key, redis.call('HGETALL', props_key(scope, key))})
end
if ARGV[5] == '1' then
  for _, e in ipairs(found) do set_props(scope, e[1], {}) end
end
lo, hi = prefix_range(dst)
for _, key in ipairs(redis.call('ZRANGEBYLEX', pk, lo, hi)) do set_props(scope, key, {}) end
for _, e in ipairs(found) do set_props(scope, dst .. string.sub(e[1], #src + 1), e[2]) end
return #found
"""

# ARGV: 2 scope, 3 prefix
PROPS_DELETE_PREFIX = """
local lo, hi = prefix_range(ARGV[3])
local keys = redis.call('ZRANGEBYLEX', propkeys(ARGV[2]), lo, hi)
for _, key in ipairs(keys) do set_props(ARGV[2], key, {}) end
return #keys
"""

# ARGV: 2 scope, 3 key, 4 meta JSON, 5 data, 6 has data (1/0), 7 ttl (ms), 8 max bytes
NOISE_PUT = """
noise_prune(ARGV[2])
local data = nil
if ARGV[6] == '1' then data = ARGV[5] end
if noise_keep(ARGV[2], ARGV[3], ARGV[4], data, tonumber(ARGV[7]), tonumber(ARGV[8])) then
  return 1
end
return 0
"""

# ARGV: 2 scope, 3 key
NOISE_DROP = """
noise_prune(ARGV[2])
if noise_pop(ARGV[2], ARGV[3]) then return 1 end
return 0
"""

# ARGV: 2 scope, 3 src, 4 dst, 5 last-modified (ISO), 6 ttl (ms), 7 max bytes
NOISE_MOVE = """
noise_prune(ARGV[2])
local flat = noise_pop(ARGV[2], ARGV[3])
if not flat or #flat == 0 then return false end
local h = hash(flat)
local meta = cjson.decode(h.meta)
meta.key = ARGV[4]
meta.modified = ARGV[5]
local m = cjson.encode(meta)
if noise_keep(ARGV[2], ARGV[4], m, h.data, tonumber(ARGV[6]), tonumber(ARGV[7])) then
  return {m, h.data}
end
return {m}
"""

# ARGV: 2 scope
NOISE_COUNT = """
noise_prune(ARGV[2])
local idx = noise_keys(ARGV[2])
return redis.call('ZCARD', idx)
"""

# ARGV: 2 guard key, 3 token: compare-and-delete
GUARD_RELEASE = """
if redis.call('GET', ARGV[2]) == ARGV[3] then return redis.call('DEL', ARGV[2]) end
return 0
"""

SCRIPTS = {
    name: PRELUDE + body
    for name, body in {
        "acquire": ACQUIRE,
        "refresh": REFRESH,
        "release": RELEASE,
        "get": GET,
        "covering": COVERING,
        "below": BELOW,
        "drop": DROP,
        "note_created": NOTE_CREATED,
        "count": COUNT,
        "props_patch": PROPS_PATCH,
        "props_copy": PROPS_COPY,
        "props_delete": PROPS_DELETE,
        "props_copy_prefix": PROPS_COPY_PREFIX,
        "props_delete_prefix": PROPS_DELETE_PREFIX,
        "noise_put": NOISE_PUT,
        "noise_drop": NOISE_DROP,
        "noise_move": NOISE_MOVE,
        "noise_count": NOISE_COUNT,
        "guard_release": GUARD_RELEASE,
    }.items()
}
