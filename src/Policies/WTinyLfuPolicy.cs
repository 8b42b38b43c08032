using System.Diagnostics;
using System.Runtime.CompilerServices;

namespace CacheKit.Policies;

/// <summary>
/// W-TinyLFU (Einziger, Friedman and Manes, 2017), as in Caffeine: a small LRU admission window in
/// front of a segmented LRU main space (probation and protected), with a TinyLFU frequency sketch
/// (4-bit count-min, periodic halving, doorkeeper) deciding at the window/main boundary whether an
/// entry leaving the window may displace the main space's victim. The window size adapts with a
/// miniature simulation of several window sizes (and two lengths of sketch memory) unless
/// <see cref="PolicyOptions.WindowFraction"/> fixes it.
/// </summary>
/// <remarks>
/// <para><b>Structure.</b> Three lists in one <see cref="HandleLists"/>, head = most recent:
/// window, probation, protected. Limits are in weight: window <c>_maxWindow</c> (1% at start),
/// protected <c>_maxProtected</c> (90% of the main space, Caffeine 80%); probation takes the rest.</para>
/// <para><b>Eviction protocol.</b> <see cref="PolicyBase.OnAdd"/> links the newcomer at the window's head and
/// moves the window's overflow to the probation head; the first entry moved in an eviction round
/// is the <i>candidate</i>. <see cref="SelectVictim"/> duels the candidate with the probation tail
/// (the <i>victim</i>): the one with the lower sketch frequency is returned (ties go against the
/// candidate). When the candidate wins and the capacity counts entries, the entry returned is the least
/// frequent of the <see cref="VictimSample"/> oldest probation entries rather than the tail itself
/// (oldest first among equals); a candidate that lost to the tail but was seen at least
/// <see cref="ForgottenRivalMinimum"/> times still gets in when one of those old entries has an estimate of
/// 0 or one at least <see cref="RivalMargin"/> below the candidate's, and that entry is returned; the tail
/// it spared moves to the probation head when the eviction round ends (a second chance, so the next duel
/// faces an unbiased oldest entry, not a survivor of earlier samples). After
/// the owner removes the loser, the candidate pointer moves to the next newer probation entry, exactly as Caffeine's <c>evictFromMain</c>
/// walks its candidates. With no candidate, the window's tail is the candidate.</para>
/// <para><b>Adaptive window.</b> Unless <see cref="PolicyOptions.WindowFraction"/> fixes it, the window
/// follows <see cref="WindowShadows"/>: shadow W-TinyLFU caches with fixed windows (0.1 % to 99 %) replay a
/// sample of the requests, and the window takes the size of the one with the most recent hits, once its
/// lead exceeds the noise. This replaced Caffeine's hill climber, which sampled 10 accesses per entry
/// between steps and never reached the right window on short or changing traces (sprite at 1,000
/// entries: 85.0 % against LRU's 90.6 %; now 90.5 %).</para>
/// <para><b>Shared window.</b> In a sharded cache whose shards hold more than
/// <see cref="WindowShadows.MaxShadowEntries"/> entries each, one shard (the leader) runs the shadows and the others
/// take its choice (<see cref="PolicyOptions.SharedWindow"/>, <see cref="SharedWindowChoice"/>).</para>
/// <para><b>Adaptive sketch memory.</b> With an entry-count capacity of at most 2,048 entries
/// (<see cref="WindowShadows.HasLongMemory"/>) the adaptive policy also keeps a second
/// sketch with four times the sample period (<see cref="WindowShadows.LongMemory"/>, no doorkeeper), and
/// the shadows replay both memories; the duel consults the long one while its shadows lead. A sample period
/// of 10 accesses per entry forgets a key of a loop longer than that between two of its accesses, so the
/// just-seen candidate always beats the victim and a small cache degenerates to LRU on loops (cs at 100
/// entries: 1.8 %, OPT 7.7 %); four times longer keeps the loop's resident keys (4.2 %), while the
/// short memory stays best wherever popularity drifts (ps, multi2: a long memory everywhere cost them up
/// to 5 points).</para>
/// <para>Invariants: window, probation and protected weights sum to <see cref="PolicyBase.Weight"/>
/// (base class); <c>_maxWindow + _maxProtected &lt;= Capacity</c>; <c>_candidate</c> is -1 or a
/// probation entry. Not thread-safe for hits (<see cref="ConcurrentHits"/> is false): the owner
/// buffers reads (<see cref="ReadBuffer"/>).</para>
/// </remarks>
internal sealed partial class WTinyLfuPolicy : PolicyBase
{
    private const int Window = 0;
    private const int Probation = 1;
    private const int Protected = 2;

    private const double InitialWindowFraction = 0.01;
    // Protected share of the main space. Caffeine uses 80 %; measured on the whole suite (LIRS mean gap to
    // OPT, `--suite all`): 60 % 3.07, 70 % 3.06, 80 % 3.005, 85 % 2.990, 87.5 % 2.981, 90 % 2.982, 92.5 % 2.979,
    // 95 % 3.008, 99 % 3.27, a broad optimum at 85-92.5 % that held with policy seeds 1 and 2 (90 %: 3.048 ->
    // 3.042, 3.031 -> 2.992). Where it gains (cpp, ps, cs, multi1 at 100-400 entries) a smaller probation still
    // gives newcomers their chance, while a larger protected keeps more proven entries; it costs up to 0.3 on
    // loop at 500 and sprite at 100 (docs/policies/w-tinylfu.md, departure 7).
    private const double ProtectedFraction = 0.90;
    private const int QueueTransferThreshold = 1000;

    /// <summary>
    /// A candidate that wins its duel against the probation tail evicts the least frequent of this many
    /// oldest probation entries (entry-count capacity only). The admission threshold stays the tail's
    /// frequency: comparing the candidate with the sample's minimum instead admitted more and churned loops
    /// (loop at 1,000: 98.25 -> 94.74 %). Measured on the whole suite (`--suite all`, LIRS mean gap to OPT
    /// 3.21 before): 2 oldest 3.21, 4: 3.17, 6: 3.10, 8: 3.09, 12: 3.09, 16: 3.09, 32: 3.08; 8 is the
    /// smallest that holds the gain and keeps web07 at 8,000 at ConcurrentLfu's level.
    /// </summary>
    internal const int VictimSample = 8;

    /// <summary>
    /// A losing candidate seen at least this often (estimate, doorkeeper included) still gets in when one of
    /// the <see cref="VictimSample"/> oldest probation entries has an estimate of 0: the sketch has forgotten
    /// it, so nothing speaks for keeping it, and it goes instead. LIRS mean gap 3.09 -> 3.05 (at 2; 1: 3.10,
    /// 3: 3.04, 4: 3.07); ps at 100 26.00 -> 27.41, multi2 at 100 28.87 -> 29.95, sprite at 100 32.15 -> 31.66.
    /// </summary>
    internal const int ForgottenRivalMinimum = 2;

    /// <summary>
    /// A losing candidate also gets in when its estimate exceeds the rarest of the <see cref="VictimSample"/>
    /// oldest probation entries by at least this much (more than the sketch's noise), and that entry goes.
    /// On top of <see cref="ForgottenRivalMinimum"/>: LIRS gap 3.05 -> 2.99 (margin 2: 2.97 but web07 at
    /// 2,000 -0.8 and at 500 -0.5; 4: 3.02); no cell lost more than 0.07, ps at 200 45.73 -> 46.97 %.
    /// A loop's keys have near-equal estimates, so the margin rarely fires there (without one, comparing
    /// with the rarest entry cost loop at 1,000 3.5 points).
    /// </summary>
    internal const int RivalMargin = 3;

    private readonly FrequencySketch _sketch;
    private readonly bool _recordsAccesses;          // false: _sketch is shared and its owner counts every access
    private readonly FrequencySketch? _longSketch;   // adaptive, small entry capacity: LongMemory x the period
    private bool _useLongSketch;                     // the shadows chose the long memory for the duels
    private readonly ulong[] _hashes;
    private readonly bool _adaptive;
    private readonly bool _sampleVictims;  // entry-count capacity: duels consult the VictimSample oldest probation entries

    private long _maxWindow;         // window limit by weight; _maxWindow + _maxProtected <= Capacity
    private long _maxProtected;      // protected limit by weight; probation takes what is left
    private double _windowFraction;  // the window's share now (the initial one, or the adaptive choice's); of ShareCapacity

    private int _candidate = -1;     // oldest probation entry of this eviction round not yet dueled
    private int _duelCandidate = -1; // last duel, so OnRemove can advance the candidate pointer
    private int _duelVictim = -1;
    private bool _duelAdmitted;
    // The probation tail that a sampled victim spared in the last duel, or -1. At the end of the eviction
    // round it moves to the probation head: left at the tail it would face every next candidate, and having
    // outlived rarer entries it is more frequent than an unbiased oldest entry, so the admission bar crept up
    // (Zipf at 10,000-100,000 entries lost 0.4-0.9 points; with the second chance it loses nothing).
    private int _sparedTail = -1;

    private RecentMisses _recentMisses;   // misses replayed and not yet followed by their add (AddCore)
    private readonly BlindAddMarks? _blindAdds;   // adds that counted themselves (TryCancelLateMiss); null for a shadow

    // Protected entries moved to the head so recently that their hits are ignored (HitSkipFilter; null for a
    // shadow, whose owner replays the sampled requests). Owner policies only.
    private readonly HitSkipFilter? _skipFilter;
    private int _stampMovesLeft = 1;   // protected moves left in the skip filter's epoch

    private readonly WindowShadows? _shadows;   // adaptive mode: picks the window (null when fixed, or a follower)
    // Sharded engine, large shards: one decision for all shards (SharedWindowChoice). The leader owns shadows and
    // publishes; a follower has none and takes the published choice at its next add. Null: the policy decides alone.
    private readonly SharedWindowChoice? _sharedWindow;
    private readonly bool _followsSharedWindow;
    private int _followedBest = WindowShadows.InitialBest;   // follower: the choice its limits are set for


    public WTinyLfuPolicy(PolicyOptions options)
        : this(options, memory: 1)
    {
    }

    /// <summary>A policy whose sketch keeps <paramref name="memory"/> times the usual sample period
    /// (no doorkeeper when above 1): the long-memory shadows of <see cref="WindowShadows"/>.</summary>
    internal WTinyLfuPolicy(PolicyOptions options, int memory)
        : this(options, memory, sharedSketch: null)
    {
    }

    /// <summary>
    /// A fixed-window policy whose duels read <paramref name="sharedSketch"/>, which its owner increments
    /// once per access for all the policies sharing it (the policy itself never counts an access in it).
    /// <see cref="WindowShadows"/> uses this: its shadows of one memory see the same accesses with the same
    /// seed and size, so their private sketches would hold the same counters at every moment.
    /// </summary>
    /// <param name="options">Options with a fixed <see cref="PolicyOptions.WindowFraction"/>.</param>
    /// <param name="memory">The sketch memory of <paramref name="sharedSketch"/>, or of the private sketch when it is null.</param>
    /// <param name="sharedSketch">A sketch of fixed size (<see cref="FrequencySketch.EnsureCapacity"/> never grows it), or null for a private one.</param>
    internal WTinyLfuPolicy(PolicyOptions options, int memory, FrequencySketch? sharedSketch)
        : base(options, listCount: 3)
    {
        Debug.Assert(memory >= 1, "memory is a multiple of the sample period");
        Debug.Assert(sharedSketch is null || (options.WindowFraction is not null && sharedSketch.ExpectedEntries == sharedSketch.MaximumEntries),
            "a shared sketch serves fixed-window policies only, and never resizes (each sharer would resize it at its own moment)");
        _hashes = new ulong[MaxHandles];
        _recordsAccesses = sharedSketch is null;
        _skipFilter = sharedSketch is null ? new HitSkipFilter(MaxHandles) : null;   // a shadow's owner samples its hits
        _blindAdds = sharedSketch is null ? new BlindAddMarks(MaxHandles) : null;   // a shadow counts nothing
        _sketch = sharedSketch ?? CreateSketch(Capacity, MaxHandles, options.Seed, memory);
        _adaptive = options.WindowFraction is null;
        InitialFraction = options.WindowFraction ?? InitialWindowFraction;
        // Under a byte budget the sketch starts at 64 entries and grows, so its counts are too coarse to
        // rank old entries: sampling there lost 1.4 to 3 points on AdaptSize (4/16 MiB).
        _sampleVictims = Capacity <= MaxHandles;
        if (_adaptive && options.SharedWindow is not null)
        {
            if (Capacity > MaxHandles || !SharedWindowChoice.PaysOff(Capacity))
            {
                throw new ArgumentOutOfRangeException(nameof(options.SharedWindow), Capacity,
                    $"a shared window choice needs an entry-count capacity above {WindowShadows.MaxShadowEntries} entries (capacity {Capacity}, handles {MaxHandles})");
            }
            _sharedWindow = options.SharedWindow;
            _followsSharedWindow = !options.LeadsSharedWindow;
        }
        if (_adaptive && !_followsSharedWindow)
        {
            _shadows = new WindowShadows(Capacity, MaxHandles, options.Seed);
            if (_shadows.HasLongMemory)
            {
                _longSketch = CreateSketch(Capacity, MaxHandles, options.Seed, WindowShadows.LongMemory);
            }
        }
        SyncSkipFilterSample();
        ResetLimits();
    }

    /// <summary>
    /// A sketch for the entries the cache will hold. With an entry-count capacity that is the capacity.
    /// With a byte budget (capacity above the handle range) the count is unknown: the sketch starts
    /// small and grows with the resident count (<see cref="FrequencySketch.EnsureCapacity"/>); sized for
    /// the handle range instead, it never aged on the AdaptSize trace (10 x 36,816 accesses per period
    /// for a 67,000-request trace). <paramref name="memory"/> above 1 sizes it for that many times the
    /// entries (a longer sample period) without a doorkeeper: the adaptive policy's long memory, whose job
    /// is to remember keys across long loops (with a doorkeeper too: LIRS gap 3.26 against 3.23, and 40 more
    /// bits per entry).
    /// </summary>
    internal static FrequencySketch CreateSketch(long capacity, int maxHandles, int seed, int memory = 1)
    {
        long maximum = Math.Min(capacity, maxHandles);
        long expected = capacity <= maxHandles ? maximum : Math.Min(maximum, 64);
        return new FrequencySketch(expected * memory, seed, doorkeeper: memory == 1, maximumEntries: maximum * memory);
    }

    /// <summary>The sketch the duels consult now.</summary>
    private FrequencySketch DuelSketch => _useLongSketch ? _longSketch! : _sketch;

    /// <summary>Counts one access in the sketch (and the long-memory one, when there is one); nothing when
    /// the sketch is shared (its owner counts each access once for all sharers).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void RecordAccess(ulong keyHash) => RecordAccessMixed(keyHash, _sketch.Mix(keyHash));

    /// <summary><see cref="RecordAccess"/> with the key's hash already mixed for <c>_sketch</c> (the long-memory
    /// sketch, small caches only, mixes its own).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void RecordAccessMixed(ulong keyHash, ulong mixed)
    {
        if (_recordsAccesses)
        {
            _sketch.IncrementMixed(mixed);
            _longSketch?.Increment(keyHash);
        }
    }

    public override string Name => _adaptive ? "W-TinyLFU" : $"W-TinyLFU({InitialFraction:0.###})";

    public override bool ConcurrentHits => false;

    internal override HitSkipFilter? SkippableHits => _skipFilter;

    /// <summary>The window's share of capacity at start (and always, when not adaptive).</summary>
    internal double InitialFraction { get; }

    /// <summary>The current window limit, in weight.</summary>
    internal long WindowMaximum => _maxWindow;

    /// <summary>The current protected-segment limit, in weight.</summary>
    internal long ProtectedMaximum => _maxProtected;

    internal FrequencySketch Sketch => _sketch;

    /// <summary>Tests: the key hashes of the newest and oldest probation entries (0 when probation is empty).</summary>
    internal (ulong Newest, ulong Oldest) ProbationEnds =>
        Lists.Count(Probation) == 0 ? (0, 0) : (_hashes[Lists.First(Probation)], _hashes[Lists.Last(Probation)]);

    /// <summary>Whether the duels consult the long-memory sketch now (adaptive mode only).</summary>
    internal bool UsesLongMemory => _useLongSketch;

    public override void OnMiss(ulong keyHash) => MissMixed(keyHash, _sketch.Mix(keyHash));

    /// <inheritdoc/>
    public override bool TryCancelLateMiss(int handle)
    {
        // Not asserted tracked: the handle is the caller's (an untracked one has no mark, its removal cleared it).
        CheckRange(handle);
        return _blindAdds is not null && _blindAdds.TryConsume(handle);
    }

    /// <inheritdoc/>
    public override bool CancelsLateMisses => _blindAdds is not null;   // a shadow keeps no marks (and has no read buffer)

    public override int SelectVictim()
    {
        if (Count == 0)
        {
            return -1;
        }
        int victim = Lists.Last(Probation);
        if (victim < 0)
        {
            victim = Lists.Last(Protected);
            if (victim < 0)
            {
                victim = Lists.Last(Window);
            }
        }
        int candidate = _candidate >= 0 ? _candidate : Lists.Last(Window);
        _duelVictim = -1;
        if (candidate < 0 || candidate == victim)
        {
            return victim;
        }
        if (WeightOf(candidate) > Capacity)
        {
            return candidate;
        }
        _duelAdmitted = Admit(_hashes[candidate], _hashes[victim], out int candidateFrequency, out int victimFrequency);
        if (_sampleVictims && Lists.ListOf(victim) == Probation
            && (_duelAdmitted || candidateFrequency >= ForgottenRivalMinimum))
        {
            int rarest = LeastFrequentOldProbation(victim, victimFrequency, candidate, out int rarestFrequency);
            if (_duelAdmitted || rarestFrequency == 0 || candidateFrequency - rarestFrequency >= RivalMargin)
            {
                // Admitted: the rarest old entry goes. Lost to the tail: still in, against a forgotten or a
                // clearly rarer old entry.
                Debug.Assert(_duelAdmitted || rarest != victim, "a candidate that lost to the tail beats only a rarer entry");
                _sparedTail = rarest != victim ? victim : -1;
                victim = rarest;
                _duelAdmitted = true;
            }
        }
        _duelCandidate = candidate;
        _duelVictim = victim;
        return _duelAdmitted ? victim : candidate;
    }

    /// <summary>The key hash a tracked handle was added (or last updated) with.</summary>
    internal ulong HashOf(int handle)
    {
        AssertTracked(handle);
        return _hashes[handle];
    }

    protected override void AddCore(int handle, ulong keyHash)
    {
        _hashes[handle] = keyHash;
        Debug.Assert(_recordsAccesses || _recentMisses.Contains(keyHash),
            "with a shared sketch every add follows the miss of its key (the owner counted that access once)");
        bool countedItself = !_recentMisses.TryConsume(keyHash);
        if (countedItself)
        {
            // A put without a lookup before it (or whose lookup's miss is replayed later): count the access here.
            RecordAccess(keyHash);
        }
        _blindAdds?.Mark(handle, countedItself);
        if (_recordsAccesses)
        {
            _sketch.EnsureCapacity(Count);   // a shared sketch has its fixed size (constructor)
        }
        LinkFirst(Window, handle);
        Adapt(keyHash, handle);
        if (_followsSharedWindow)
        {
            FollowSharedWindow();
        }
        EvictFromWindow();
        if (Weight <= Capacity)
        {
            _candidate = -1;   // no eviction round follows: the moved entries are plain probation entries
        }
    }

    /// <summary>
    /// A hit replayed by <see cref="WindowShadows"/> into one of its shadows, for a handle it tracks: exactly what
    /// <see cref="PolicyBase.OnHit"/> does there (the shadow's shared sketch was counted by the owner, and a
    /// fixed-window policy has nothing to adapt), without the checks and calls around the segment move.
    /// </summary>
    internal void OnSharedSketchHit(int handle)
    {
        Debug.Assert(!_recordsAccesses && _shadows is null, "only fixed-window policies with a shared sketch");
        AssertTracked(handle);
        Touch(handle);
    }

    protected override void HitCore(int handle, ulong keyHash) => HitMixed(handle, keyHash, _sketch.Mix(keyHash));

    /// <summary><see cref="HitCore"/> with the key's hash already mixed for <c>_sketch</c> (<see cref="FrequencySketch.Mix"/>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void HitMixed(int handle, ulong keyHash, ulong mixed)
    {
        if (_skipFilter is not null && _skipFilter.IsStamped(handle))
        {
            // Moved to the protected head in this epoch: neither moved nor counted (HitSkipFilter); the shadows still
            // see a sampled request (without them: sprite at 2,000 -0.8, AdaptSize at 16 MiB -0.8).
            Adapt(keyHash, handle);
            return;
        }
        RecordAccessMixed(keyHash, mixed);
        Touch(handle);
        Adapt(keyHash, handle);
    }

    /// <summary><see cref="OnMiss"/> with the key's hash already mixed for <c>_sketch</c>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void MissMixed(ulong keyHash, ulong mixed)
    {
        RecordAccessMixed(keyHash, mixed);
        _recentMisses.Add(keyHash);
    }

    protected override void UpdateCore(int handle, ulong keyHash, long delta)
    {
        Debug.Assert(_recordsAccesses, "policies sharing a sketch are never updated (their owner could not count it)");
        _hashes[handle] = keyHash;
        bool countedItself = !_recentMisses.TryConsume(keyHash);
        if (countedItself)
        {
            RecordAccess(keyHash);   // a set of a stored key; after its own miss (the entry had expired) it is that one access
        }
        _blindAdds?.Mark(handle, countedItself);
        Touch(handle);
        EvictFromWindow();
        DemoteFromProtected();
        if (Weight <= Capacity)
        {
            _candidate = -1;   // as in AddCore: no eviction round follows, so no stale candidate for the next one
        }
    }

    protected override void RemoveCore(int handle)
    {
        if (handle == _duelVictim && _duelAdmitted && _duelCandidate == _candidate && _candidate >= 0)
        {
            // The candidate won its duel and stays; the next newer one is up (Caffeine's evictFromMain).
            _candidate = Lists.Previous(_candidate);
        }
        ForgetCandidate(handle);
        _skipFilter?.Clear(handle);
        _blindAdds?.Clear(handle);
        _duelVictim = -1;
        _duelCandidate = -1;
        if (Weight - WeightOf(handle) <= Capacity)
        {
            _candidate = -1;   // the eviction round is over
            int spared = _sparedTail;
            _sparedTail = -1;
            if (spared >= 0 && spared != handle && Lists.ListOf(spared) == Probation)
            {
                MoveFirst(Probation, spared);
            }
        }
    }

    protected override void ClearCore()
    {
        _candidate = -1;
        _duelCandidate = -1;
        _duelVictim = -1;
        _sparedTail = -1;
        _skipFilter?.Clear();
        _blindAdds?.ClearAll();
        _stampMovesLeft = 1;
        _recentMisses.Clear();
        _shadows?.Clear();
        SyncSkipFilterSample();
        _useLongSketch = false;
        ResetLimits();
        _followedBest = WindowShadows.InitialBest;   // ResetLimits set the initial window
        if (_sharedWindow is not null && !_followsSharedWindow)
        {
            _sharedWindow.Publish(WindowShadows.InitialBest);   // the leader's shadows start over
        }
    }

    /// <summary>Whether this policy takes its window from another shard's shadows (<see cref="SharedWindowChoice"/>).</summary>
    internal bool FollowsSharedWindow => _followsSharedWindow;

    /// <summary>The share of the keys the adaptive window's shadows replay now (tests); 0 without shadows.</summary>
    internal double ShadowSampleRate => _shadows?.SampleRate ?? 0;

    /// <summary>The adaptive window's shadows' capacity now (tests); 0 without shadows.</summary>
    internal long ShadowCapacity => _shadows?.ShadowCapacity ?? 0;

    /// <summary>The most entries any of the adaptive window's shadows holds now (tests); 0 without shadows.</summary>
    internal int LargestShadowCount => _shadows?.LargestShadowCount ?? 0;

    /// <summary>Whether a window shadow tracks <paramref name="handle"/> (for <see cref="WindowShadows"/>'s downsampling).</summary>
    internal bool TracksHandle(int handle) => IsTracked(handle);

    /// <summary>
    /// A window shadow's new capacity (<see cref="WindowShadows"/>: the sample it replays was halved, or it is
    /// cleared). The segments' limits follow it and their overflow moves to probation; when the shadow is then
    /// over the new capacity its owner evicts (<see cref="IEvictionPolicy.SelectVictim"/>) until it is not, as
    /// after an add.
    /// </summary>
    internal void SetShadowCapacity(long capacity)
    {
        Debug.Assert(_shadows is null && !_adaptive && capacity > 0, "only a fixed-window shadow is resized");
        Capacity = capacity;
        ResetShareCapacity();
        ResetLimits();
        EvictFromWindow();
        DemoteFromProtected();
        if (Weight <= Capacity)
        {
            _candidate = -1;   // no eviction round follows
        }
    }

    /// <summary>A window shadow's private sketch sized down to its resident count (<see cref="WindowShadows"/>, after halving its sample).</summary>
    internal void ShrinkShadowSketch()
    {
        Debug.Assert(_shadows is null && _recordsAccesses, "a shadow with its own sketch");
        _sketch.ShrinkTo(Count);
    }

    private void ResetLimits()
    {
        _windowFraction = InitialFraction;
        _maxWindow = WindowLimit(_windowFraction);
        _maxProtected = (long)(ProtectedFraction * (ShareCapacity - _maxWindow));
    }

    /// <summary>
    /// The segments' limits follow <see cref="PolicyBase.ShareCapacity"/> (the owner's own bound binds first: an engine
    /// whose byte budget fills before its entry bound), at the window's current share. A protected overflow moves to probation now; a window
    /// overflow at the next add, as when the adaptive choice shrinks the window.
    /// </summary>
    protected override void ShareCapacityChanged()
    {
        _maxWindow = WindowLimit(_windowFraction);
        _maxProtected = (long)(ProtectedFraction * (ShareCapacity - _maxWindow));
        DemoteFromProtected();
        if (_recordsAccesses)
        {
            // The counts age at the pace of the entries held (a shared sketch is its owner's to age).
            _sketch.SetSamplePeriodFor(ShareCapacity);
            _longSketch?.SetSamplePeriodFor(ShareCapacity * WindowShadows.LongMemory);
        }
        _shadows?.FollowCapacity(ShareCapacity);
        SyncSkipFilterSample();
    }

    /// <summary>The skip filter must not skip the keys the shadows sample: their hits still go to the shadows.</summary>
    private void SyncSkipFilterSample()
    {
        if (_shadows is not null)
        {
            _skipFilter?.SetSample(_shadows.Salt, _shadows.Threshold);
        }
    }

    /// <summary>Records an access in the segment order.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void Touch(int handle)
    {
        int list = Lists.ListOf(handle);
        if (list == Probation)
        {
            Promote(handle);
        }
        else
        {
            MoveFirstWithin(list, handle);   // window or protected: to the head of its own segment
            if (list == Protected)
            {
                NoteProtectedMove(handle);
            }
        }
    }

    /// <summary>A protected entry moved to the segment's head: its hits are skipped for the rest of the epoch, which
    /// ends after a quarter of the segment's count of moves (so such an entry stays in the segment's newest quarter).</summary>
    private void NoteProtectedMove(int handle)
    {
        if (_skipFilter is null)
        {
            return;
        }
        _skipFilter.Stamp(handle);
        if (--_stampMovesLeft > 0)
        {
            return;
        }
        _skipFilter.NextEpoch();
        _stampMovesLeft = Math.Max(1, Lists.Count(Protected) >> 2);   // at most HitSkipFilter.MaxEpochMoves
    }

    /// <summary>A probation hit: to the protected head, the protected overflow back to probation.</summary>
    private void Promote(int handle)
    {
        ForgetCandidate(handle);
        MoveFirst(Protected, handle);
        NoteProtectedMove(handle);   // before the overflow leaves: a heavy entry may be its own overflow
        DemoteFromProtected();
    }

    /// <summary>Moves the window's overflow to the probation head; the first moved starts the candidates.</summary>
    private void EvictFromWindow()
    {
        while (ListWeight(Window) > _maxWindow)
        {
            int h = Lists.Last(Window);
            if (h < 0)
            {
                break;
            }
            MoveFirst(Probation, h);
            if (_candidate < 0)
            {
                _candidate = h;
            }
        }
    }

    /// <summary>Moves protected overflow to the probation head.</summary>
    private void DemoteFromProtected()
    {
        while (ListWeight(Protected) > _maxProtected)
        {
            int h = Lists.Last(Protected);
            if (h < 0)
            {
                break;
            }
            _skipFilter?.Clear(h);
            MoveFirst(Probation, h);
        }
    }

    private void ForgetCandidate(int handle)
    {
        if (handle == _candidate)
        {
            _candidate = Lists.Previous(handle);
        }
    }

    /// <summary>
    /// The TinyLFU duel: the candidate displaces the victim only when strictly more frequent.
    /// Caffeine also admits a frequent loser with probability 1/128 against hash flooding; here the
    /// sketch hashes are seeded per instance, so colliding keys cannot be chosen from outside, and that
    /// random admission cost up to 6 points on loop traces (loop at 1000: 92.6% with it, 97.8% without).
    /// </summary>
    private bool Admit(ulong candidateHash, ulong victimHash, out int candidateFrequency, out int victimFrequency)
    {
        FrequencySketch sketch = DuelSketch;
        candidateFrequency = sketch.Frequency(candidateHash);
        victimFrequency = sketch.Frequency(victimHash);
        return candidateFrequency > victimFrequency;
    }

    /// <summary>
    /// The least frequent of the <see cref="VictimSample"/> oldest probation entries, starting at
    /// <paramref name="tail"/> (whose estimate is <paramref name="tailFrequency"/>) and stopping before
    /// <paramref name="candidate"/> (the oldest wins ties); its estimate in <paramref name="frequency"/>.
    /// The tail is the oldest entry, not the least useful one: an entry admitted once that was never asked
    /// for again sits in front of an older entry with a few hits, and LRU order alone evicts the wrong one.
    /// O(<see cref="VictimSample"/>) sketch reads, on an eviction whose candidate was admitted or was seen
    /// at least <see cref="ForgottenRivalMinimum"/> times.
    /// </summary>
    private int LeastFrequentOldProbation(int tail, int tailFrequency, int candidate, out int frequency)
    {
        Debug.Assert(Lists.ListOf(tail) == Probation && Lists.Last(Probation) == tail, "the sample starts at the probation tail");
        FrequencySketch sketch = DuelSketch;
        Debug.Assert(sketch.Frequency(_hashes[tail]) == tailFrequency, "the tail's estimate comes from the same sketch");
        int best = tail;
        int bestFrequency = tailFrequency;
        int h = tail;
        for (int i = 1; i < VictimSample && bestFrequency > 0; i++)
        {
            h = Lists.Previous(h);
            if (h < 0 || h == candidate)
            {
                break;
            }
            int f = sketch.Frequency(_hashes[h]);
            if (f < bestFrequency)
            {
                best = h;
                bestFrequency = f;
            }
        }
        Debug.Assert(Lists.ListOf(best) == Probation && best != candidate, "the victim is an old probation entry, never the candidate");
        frequency = bestFrequency;
        return best;
    }

    /// <summary>Adaptive mode: when the shadows end a decision epoch, the window takes the chosen size and
    /// the duels the chosen sketch memory.</summary>
    /// <remarks>The entry's weight is read only for a sampled request (most hits of a large cache never touch it).</remarks>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void Adapt(ulong keyHash, int handle)
    {
        if (_shadows is not null && _shadows.IsSampled(keyHash))
        {
            AdaptSampled(keyHash, handle);
        }
    }

    private void AdaptSampled(ulong keyHash, int handle)
    {
        bool recorded = _shadows!.RecordSampled(keyHash, WeightOf(handle));
        SyncSkipFilterSample();   // the sample may have shrunk (byte budget)
        if (!recorded)
        {
            return;
        }
        _sharedWindow?.Publish(_shadows.Best);
        TakeWindowChoice(_shadows.Best);
    }

    /// <summary>A follower: when the leader published another choice since the last add, take it (one volatile
    /// read per add; hits never look).</summary>
    private void FollowSharedWindow()
    {
        int best = _sharedWindow!.Best;
        if (best != _followedBest)
        {
            _followedBest = best;
            TakeWindowChoice(best);
        }
    }

    /// <summary>The window and sketch memory of shadow <paramref name="best"/> (<see cref="WindowShadows.Best"/>).</summary>
    private void TakeWindowChoice(int best)
    {
        _useLongSketch = _longSketch is not null && WindowShadows.IsLongMemory(best);
        _windowFraction = WindowShadows.FractionOf(best);
        SetWindow(WindowLimit(_windowFraction));
    }

    /// <summary>The window limit of shadow <paramref name="best"/>'s fraction at this capacity.</summary>
    private long WindowFor(int best) => WindowLimit(WindowShadows.FractionOf(best));

    /// <summary>The window limit for <paramref name="fraction"/> of the share capacity (the capacity, unless room is made
    /// below it): at least one entry, at most all.</summary>
    private long WindowLimit(double fraction) => Math.Min(ShareCapacity, Math.Max(1, (long)Math.Round(ShareCapacity * fraction)));

    /// <summary>
    /// Moves the window limit to <paramref name="target"/>. Growing moves main entries (probation tail
    /// first, as Caffeine's <c>increaseWindow</c>) into the window, at most <c>QueueTransferThreshold</c>
    /// per call; shrinking only lowers the limit, and the next add's <see cref="EvictFromWindow"/> moves the
    /// overflow to probation (amortised O(1): a decision comes at most every eighth of a turnover).
    /// </summary>
    private void SetWindow(long target)
    {
        if (target == _maxWindow)
        {
            return;
        }
        bool growing = target > _maxWindow;
        _maxWindow = target;
        _maxProtected = (long)(ProtectedFraction * (ShareCapacity - target));
        if (growing)
        {
            for (int i = 0; i < QueueTransferThreshold; i++)
            {
                int h = Lists.Last(Probation);
                if (h < 0)
                {
                    h = Lists.Last(Protected);
                }
                if (h < 0 || ListWeight(Window) + WeightOf(h) > _maxWindow)
                {
                    break;
                }
                ForgetCandidate(h);
                _skipFilter?.Clear(h);
                MoveFirst(Window, h);
            }
        }
        DemoteFromProtected();
    }

    internal override void ValidateInvariants()
    {
        base.ValidateInvariants();
        _sketch.ValidateInvariants();
        _longSketch?.ValidateInvariants();
        _shadows?.ValidateInvariants();
        _skipFilter?.ValidateInvariants(h => Lists.ListOf(h) == Protected);
        if (_skipFilter is not null && (_skipFilter.SampleSalt, _skipFilter.SampleThreshold) != (_shadows?.Salt ?? 0, _shadows?.Threshold ?? 0))
        {
            throw new InvalidOperationException("W-TinyLFU's skip filter does not know the shadows' sample");
        }
        if (_useLongSketch && _longSketch is null)
        {
            throw new InvalidOperationException("W-TinyLFU uses a long-memory sketch it does not have");
        }
        if (_adaptive && (_shadows is null) != _followsSharedWindow)
        {
            throw new InvalidOperationException($"adaptive W-TinyLFU: shadows {(_shadows is null ? "absent" : "present")}, follower {_followsSharedWindow}");
        }
        if (_followsSharedWindow && _maxWindow != WindowFor(_followedBest))
        {
            throw new InvalidOperationException($"W-TinyLFU follower: window {_maxWindow}, but the choice it took ({_followedBest}) gives {WindowFor(_followedBest)}");
        }
        if (_candidate >= 0 && Lists.ListOf(_candidate) != Probation)
        {
            throw new InvalidOperationException($"W-TinyLFU candidate {_candidate} is not in probation");
        }
        if (_candidate >= 0 && Weight <= Capacity)
        {
            throw new InvalidOperationException($"W-TinyLFU keeps candidate {_candidate} outside an eviction round (weight {Weight} of {Capacity})");
        }
        if (_maxWindow < 0 || _maxProtected < 0 || _maxWindow + _maxProtected > Capacity)
        {
            throw new InvalidOperationException($"W-TinyLFU limits window {_maxWindow} protected {_maxProtected} exceed capacity {Capacity}");
        }
        Debug.Assert(ListWeight(Window) + ListWeight(Probation) + ListWeight(Protected) == Weight, "segment weights must sum to the total");
    }
}
