namespace CacheKit.Policies;

/// <summary>
/// The owner's check, at replay time, that a buffered hit still names the entry that was read. A hit record
/// names a handle and the key hash it was read with; by the time a <see cref="ReadBuffer"/> replays it, the
/// owner may have removed that entry and given the handle to another key (the engine reuses index slots as
/// handles). Without a filter the replay would move or count the new key's entry, which was never read. A buffered
/// miss is checked too: if its key was added before the miss is replayed, the add counted that access.
/// </summary>
public interface IReadRecordFilter
{
    /// <summary>Whether <paramref name="handle"/> still holds the entry of the key hashed <paramref name="keyHash"/>.
    /// Called by the drainer, with the owner's lock held; a false record is dropped (as a full stripe drops one).</summary>
    /// <param name="handle">The record's handle, within the policy's handles.</param>
    /// <param name="keyHash">The hash the reader looked the key up with.</param>
    bool IsCurrent(int handle, ulong keyHash);

    /// <summary>Whether the owner holds a live entry whose key hashed to <paramref name="keyHash"/> (a match of the
    /// hash's tag may stand for it). Called by the drainer for a miss record, with the owner's lock held: true means
    /// the key was added after it missed, and that add was replayed first and counted the access, so the miss is
    /// dropped rather than counted a second time.</summary>
    /// <param name="keyHash">The hash the reader looked the key up with.</param>
    bool HoldsKeyOf(ulong keyHash);
}
