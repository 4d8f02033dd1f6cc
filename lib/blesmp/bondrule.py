# The one rule for "may new keys replace a bond?", shared by the manager's link-time code
# (blesmp.link) and the store's writer (blesmp.bondwrite). Its own module so that a board at rest
# holds none of it: each of those imports it while it runs and drops it with itself.
# Not part of the API.
def may_replace(old, new, policy="stronger", vouched=False, moved=False):
    """May keys of strength `new` replace a bond of strength `old`? Both (key_size,
    authenticated, sc); sc None = unknown, taken as legacy. The one rule for the manager and the
    store (Zephyr's update_keys_check is the model): "allow" yes; "stronger" (default) only if
    not weaker (key not shorter, not unauthenticated after authenticated, not legacy after SC),
    and then an unauthenticated pairing (Just Works) only if someone vouches for the peer (the
    open pairing window); "deny" (or anything else: fail closed) never. moved: the keys came
    over a connection from another address (the peer distributed the bonded identity): a code
    the user confirmed vouches for that connection, not for the bond's owner: only the window."""
    if policy == "allow":
        return True
    if policy != "stronger" or new[0] < old[0] or (old[1] and not new[1]) or (old[2] and not new[2]):
        return False
    return bool(vouched or (new[1] and not moved))
