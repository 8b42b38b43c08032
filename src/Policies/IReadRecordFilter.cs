namespace CacheKit.Policies;

/// <summary>
/// The owner's check, at replay time, that a buffered hit still names the entry that was read. A hit record
/// names a handle and the key hash it was read with; by the time a <see cref="ReadBuffer"/> replays it, the
/// owner may have removed that entry and given the handle to another key (the engine reuses index slots as
/// handles). Without a filter the replay would move or count the new key's entry, which was never read. For a policy
/// that can cancel a late miss (<see cref="IEvictionPolicy.CancelsLateMisses"/>) a buffered miss is checked too: if its
/// key was added before the miss is replayed, that add may have counted the access already
/// (<see cref="IEvictionPolicy.TryCancelLateMiss"/>).
/// </summary>
public interface IReadRecordFilter
{
    /// <summary>Whether <paramref name="handle"/> still holds the entry of the key hashed <paramref name="keyHash"/>.
    /// Called by the drainer, with the owner's lock held; a false record is dropped (as a full stripe drops one).</summary>
    /// <param name="handle">The record's handle, within the policy's handles.</param>
    /// <param name="keyHash">The hash the reader looked the key up with.</param>
    bool IsCurrent(int handle, ulong keyHash);

    /// <summary>The handle of the owner's live entry whose key hashed to <paramref name="keyHash"/> (a match of the
    /// hash's tag may stand for it), or -1. Called by the drainer for a miss record, with the owner's lock held, and only
    /// when the policy can cancel one (<see cref="IEvictionPolicy.CancelsLateMisses"/>: W-TinyLFU and the TinyLFU
    /// admission filter; for other policies every miss is replayed without this call): a handle means the key was added
    /// after it missed; the drainer then asks the policy whether that add counted the access
    /// (<see cref="IEvictionPolicy.TryCancelLateMiss"/>) and drops the miss if so. The default returns -1 (every miss is
    /// replayed).</summary>
    /// <param name="keyHash">The hash the reader looked the key up with.</param>
    int HandleOfLiveKey(ulong keyHash) => -1;
}
