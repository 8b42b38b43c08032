using System.Reflection;
using CacheKit.Policies;

namespace CacheKit.Policies.Tests;

/// <summary>
/// A buffered hit names a handle and the key hash it was read with. By the time it is replayed the entry
/// may have been removed and its handle reused for another key (the engine reuses index slots as
/// handles). The owner's <see cref="IReadRecordFilter"/> then drops the record, so the new key's entry is
/// not moved (found by a review: without the filter each of these tests fails).
/// </summary>
[TestFixture]
public sealed class StaleReadRecordTests
{
    private const int Window = 0, Probation = 1, Protected = 2;

    private static int ListOf(PolicyBase policy, int handle)
    {
        var lists = (HandleLists)typeof(PolicyBase).GetField("Lists", BindingFlags.NonPublic | BindingFlags.Instance)!.GetValue(policy)!;
        return lists.ListOf(handle);
    }

    private static ulong H(int key) => 0x9E3779B97F4A7C15UL * (ulong)(key + 1);

    /// <summary>The owner's view: which key hash each handle holds now.</summary>
    private sealed class Owner : IReadRecordFilter
    {
        public readonly Dictionary<int, ulong> Held = [];
        public bool IsCurrent(int handle, ulong keyHash) => Held.TryGetValue(handle, out ulong h) && h == keyHash;
        public int Lookups;
        public int HandleOfLiveKey(ulong keyHash)
        {
            Lookups++;
            return Held.Where(p => p.Value == keyHash).Select(p => p.Key).DefaultIfEmpty(-1).First();
        }
    }

    [Test]
    public void AStaleHitOfARemovedKeyDoesNotPromoteTheNewKeyThatReusedItsHandle()
    {
        // Capacity 10, window 1: protected up to 8, the rest probation.
        var policy = (WTinyLfuPolicy)PolicyFactory.Create(PolicyKind.WTinyLfu,
            new PolicyOptions { MaxHandles = 16, Capacity = 10, WindowFraction = 0.1 });
        var owner = new Owner();
        var buffer = new ReadBuffer(stripes: 1, hitFilter: owner);
        for (int k = 0; k < 10; k++)
        {
            policy.OnAdd(k, H(k), 1);
            owner.Held[k] = H(k);
        }
        Assert.That(ListOf(policy, 0), Is.EqualTo(Probation));

        // A reader validated a hit on key 0 (handle 0); its record reaches the buffer only after the owner
        // drained it, removed key 0 and stored key 100 in the same slot.
        Assert.That(buffer.TryRecordHit(0, H(0)), Is.True);
        policy.OnRemove(0);
        for (int i = 0; i < 3; i++)
        {
            policy.OnMiss(H(100));      // key 100 was asked for before: it wins its admission duel
        }
        policy.OnAdd(0, H(100), 1);     // key 100 reuses handle 0, in the window
        owner.Held[0] = H(100);
        policy.OnAdd(10, H(101), 1);    // key 100 leaves the window for probation
        while (policy.Weight > policy.Capacity)
        {
            policy.OnRemove(policy.SelectVictim());
        }
        Assume.That(policy.HashOf(0), Is.EqualTo(H(100)));
        Assume.That(ListOf(policy, 0), Is.EqualTo(Probation), "key 100 is a probation entry that was never hit");

        buffer.DrainUnsynchronized(policy);
        policy.ValidateInvariants();

        // The record was for key 0, which is gone: key 100 was never read and must stay in probation.
        Assert.That(ListOf(policy, 0), Is.EqualTo(Probation), "a hit recorded for key 0 promoted key 100 (the key now under its handle) to protected");
    }

    [Test]
    public void AMissRecordReplayedAfterTheAddThatCountedItIsDropped()
    {
        // The owner added key 5 before the miss that preceded that add was replayed (the two were recorded on different
        // cores): the add counted the access, so that miss must not count it again, and only that one. Key 6 is still
        // absent: its miss counts. Key 7's add followed its own replayed miss (it counted nothing): a late miss of key 7
        // is another caller's and counts.
        var policy = (WTinyLfuPolicy)PolicyFactory.Create(PolicyKind.WTinyLfu, new PolicyOptions { MaxHandles = 16, Capacity = 10 });
        var owner = new Owner();
        var buffer = new ReadBuffer(stripes: 1, hitFilter: owner);
        policy.OnMiss(H(7));
        policy.OnAdd(1, H(7), 1);
        owner.Held[1] = H(7);
        Assert.That(buffer.TryRecordMiss(H(5)), Is.True);
        Assert.That(buffer.TryRecordMiss(H(5)), Is.True);
        Assert.That(buffer.TryRecordMiss(H(6)), Is.True);
        Assert.That(buffer.TryRecordMiss(H(7)), Is.True);
        policy.OnAdd(0, H(5), 1);
        owner.Held[0] = H(5);
        int five = policy.Sketch.Frequency(H(5)), six = policy.Sketch.Frequency(H(6)), seven = policy.Sketch.Frequency(H(7));

        Assert.That(buffer.DrainUnsynchronized(policy), Is.EqualTo(4), "every record is consumed");
        Assert.That(policy.Sketch.Frequency(H(5)), Is.EqualTo(five + 1), "one of key 5's two late misses is its add's, the other counts");
        Assert.That(policy.Sketch.Frequency(H(6)), Is.EqualTo(six + 1));
        Assert.That(policy.Sketch.Frequency(H(7)), Is.EqualTo(seven + 1), "key 7's add counted nothing: its late miss counts");
        policy.ValidateInvariants();
    }

    [TestCase(PolicyKind.WTinyLfu, false)]
    [TestCase(PolicyKind.Lru, true)]
    [TestCase(PolicyKind.Sieve, true)]
    public void TryCancelLateMissRefusesAHandleOutOfRangeAndFindsNothingToCancelForAnUntrackedOne(PolicyKind kind, bool tinyLfuAdmission)
    {
        // The public method indexed the marks with the caller's handle unchecked: -1, 64 or int.MaxValue leaked an
        // IndexOutOfRangeException, and in Debug an untracked handle failed an assert (found by review, 2026-11-30).
        IEvictionPolicy policy = PolicyFactory.Create(kind, new PolicyOptions { MaxHandles = 8, Capacity = 4, TinyLfuAdmission = tinyLfuAdmission });
        foreach (int handle in new[] { -1, 8, 64, int.MaxValue, int.MinValue })
        {
            Assert.That(() => policy.TryCancelLateMiss(handle), Throws.InstanceOf<ArgumentOutOfRangeException>()
                .With.Property("ParamName").EqualTo("handle").And.Message.Contains("[0, 8)"), $"handle {handle}");
        }
        Assert.That(policy.TryCancelLateMiss(3), Is.False, "untracked: nothing to cancel");
        policy.OnAdd(3, H(3), 1);
        Assert.That(policy.TryCancelLateMiss(3), Is.True, "a blind add is still cancelled once");
    }

    [TestCase(PolicyKind.WTinyLfu, false)]
    [TestCase(PolicyKind.Lru, true)]
    public void AnAddCancelsOneLateMissOnlyIfItCountedItselfAndOnlyWhileItsEntryStays(PolicyKind kind, bool tinyLfuAdmission)
    {
        IEvictionPolicy policy = PolicyFactory.Create(kind, new PolicyOptions { MaxHandles = 16, Capacity = 10, TinyLfuAdmission = tinyLfuAdmission });
        Assume.That(policy.Name, Does.Contain("TinyLFU").IgnoreCase);
        Assert.That(policy.CancelsLateMisses, Is.True, "its owner must look its late misses up");
        policy.OnAdd(0, H(0), 1);                          // a blind add: counted
        Assert.That(policy.TryCancelLateMiss(0), Is.True);
        Assert.That(policy.TryCancelLateMiss(0), Is.False, "once");
        policy.OnMiss(H(1));
        policy.OnAdd(1, H(1), 1);                          // after its own miss: counted nothing
        Assert.That(policy.TryCancelLateMiss(1), Is.False);
        policy.OnAdd(2, H(2), 1);
        policy.OnRemove(2);
        policy.OnAdd(2, H(3), 1);
        policy.OnUpdate(2, H(3), 1);                       // a blind update counts too
        Assert.That(policy.TryCancelLateMiss(2), Is.True);
        policy.OnAdd(3, H(4), 1);
        policy.OnRemove(3);
        policy.OnMiss(H(5));
        policy.OnAdd(3, H(5), 1);                          // the handle's mark left with its entry
        Assert.That(policy.TryCancelLateMiss(3), Is.False);
        policy.OnAdd(4, H(6), 1);
        policy.Clear();
        policy.OnMiss(H(6));
        policy.OnAdd(4, H(6), 1);
        Assert.That(policy.TryCancelLateMiss(4), Is.False, "Clear forgets the marks");
    }

    [Test]
    public void OnlyAPolicyThatCanCancelALateMissHasItsMissRecordsLookedUp(
        [Values] PolicyKind kind, [Values] bool tinyLfuAdmission)
    {
        IEvictionPolicy policy = PolicyFactory.Create(kind, new PolicyOptions { MaxHandles = 16, Capacity = 10, TinyLfuAdmission = tinyLfuAdmission });
        var owner = new Owner();
        var buffer = new ReadBuffer(stripes: 1, hitFilter: owner);
        policy.OnAdd(0, H(0), 1);                          // a blind add: the only kind a late miss can cancel
        owner.Held[0] = H(0);
        Assert.That(buffer.TryRecordMiss(H(0)), Is.True);
        Assert.That(buffer.TryRecordMiss(H(1)), Is.True);

        Assert.That(buffer.DrainUnsynchronized(policy), Is.EqualTo(2));

        Assert.That(owner.Lookups, Is.EqualTo(policy.CancelsLateMisses ? 2 : 0), policy.Name);
        if (!policy.CancelsLateMisses)
        {
            Assert.That(policy.TryCancelLateMiss(0), Is.False, $"{policy.Name} cancels a late miss its owner never asks about");
        }
    }

    [Test]
    public void AStaleHitOfARemovedKeyDoesNotRefreshTheNewKeyUnderLru()
    {
        var policy = (PolicyBase)PolicyFactory.Create(PolicyKind.Lru, new PolicyOptions { MaxHandles = 8, Capacity = 4 });
        var owner = new Owner();
        var buffer = new ReadBuffer(stripes: 1, hitFilter: owner);
        for (int k = 0; k < 4; k++)
        {
            policy.OnAdd(k, H(k), 1);
            owner.Held[k] = H(k);
        }
        Assert.That(buffer.TryRecordHit(0, H(0)), Is.True);   // key 0 read, record late
        policy.OnRemove(0);
        policy.OnAdd(0, H(100), 1);                           // key 100 reuses handle 0
        owner.Held[0] = H(100);
        for (int k = 4; k < 7; k++)                           // three newer keys: key 100 is the LRU entry now
        {
            policy.OnAdd(k, H(k), 1);
            if (policy.Weight > policy.Capacity)
            {
                int v = policy.SelectVictim();
                Assume.That(v, Is.Not.EqualTo(0));
                policy.OnRemove(v);
            }
        }
        buffer.DrainUnsynchronized(policy);
        Assert.That(policy.SelectVictim(), Is.EqualTo(0), "key 100 was never read, so it is still the least recently used; the stale record of key 0 refreshed it");
    }

    [Test]
    public void NoRecordClaimedBeforeAClearIsReplayedAfterIt()
    {
        // ClearUnsynchronized cannot clear a claimed-but-unpublished slot nor the records behind it; its stripe's
        // discard mark drops them when they are met, even a hit whose handle holds a key with the same hash again (the
        // owner stored the same key under the same slot after the Clear, so the filter alone would pass it).
        var owner = new Owner();
        var buffer = new ReadBuffer(stripes: 1, hitFilter: owner);
        var tails = (long[])typeof(ReadBuffer).GetField("_tails", BindingFlags.NonPublic | BindingFlags.Instance)!.GetValue(buffer)!;
        var tags = (long[])typeof(ReadBuffer).GetField("_tags", BindingFlags.NonPublic | BindingFlags.Instance)!.GetValue(buffer)!;
        const int firstCounter = 16, firstSlot = 16;   // EdgePad: stripe 0's tail and its slot 0
        tails[firstCounter] = 1;                         // a reader claimed slot 0 and is preempted before its tag store
        Assert.That(buffer.TryRecordHit(3, 33), Is.True);   // a hit published behind it
        Assert.That(buffer.TryRecordMiss(55), Is.True);     // and a miss

        buffer.ClearUnsynchronized();                    // the owner's Clear
        tags[firstSlot] = 1;                             // the preempted reader publishes its record (a miss)
        owner.Held[3] = 33;                              // after the Clear, handle 3 holds the same key again

        Assert.That(buffer.TryRecordHit(4, 44), Is.True);   // records made after the Clear are replayed as usual
        owner.Held[4] = 44;
        Assert.That(buffer.TryRecordMiss(66), Is.True);
        var policy = new ReadBufferTests.RecordingPolicy();
        Assert.That(buffer.DrainUnsynchronized(policy), Is.EqualTo(5), "every record is taken off the stripe");
        Assert.That(policy.Hits, Is.EqualTo(new[] { (4, 44UL) }), "only the hit recorded after the Clear");
        Assert.That(policy.Misses, Is.EqualTo(new[] { 66UL }), "only the miss recorded after the Clear");

        // A second Clear with nothing pending moves the mark to the tail again; later records still replay.
        buffer.ClearUnsynchronized();
        Assert.That(buffer.TryRecordHit(4, 44), Is.True);
        Assert.That(buffer.DrainUnsynchronized(policy), Is.EqualTo(1));
        Assert.That(policy.Hits, Has.Count.EqualTo(2));
    }
}
