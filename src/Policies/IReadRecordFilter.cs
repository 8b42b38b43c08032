namespace CacheKit.Policies;

/// <summary>
/// The owner's check, at replay time, that a buffered hit still names the entry that was read. A hit record
/// names a handle and the key hash it was read with; by the time a <see cref="ReadBuffer"/> replays it, the
/// owner may have removed that entry and given the handle to another key (the engine reuses index slots as
/// handles). Without a filter the replay would move or count the new key's entry, which was never read.
/// </summary>
public interface IReadRecordFilter
{
    /// <summary>Whether <paramref name="handle"/> still holds the entry of the key hashed <paramref name="keyHash"/>.
    /// Called by the drainer, with the owner's lock held; a false record is dropped (as a full stripe drops one).</summary>
    /// <param name="handle">The record's handle, within the policy's handles.</param>
    /// <param name="keyHash">The hash the reader looked the key up with.</param>
    bool IsCurrent(int handle, ulong keyHash);
}
