using System.Diagnostics;
using System.Runtime.CompilerServices;

namespace CacheKit.Policies;

/// <summary>
/// Miniature simulations for W-TinyLFU's adaptive window (after Waldspurger et al., "Cache Modeling
/// and Optimization using Miniature Simulations", USENIX ATC 2017): a few shadow W-TinyLFU caches with
/// fixed window fractions replay a spatially hashed sample of the requests (all of them for small
/// caches); the real cache takes the window of the shadow with the most recent hits. With an entry-count
/// capacity of at most <see cref="MaxShadowEntries"/> entries a second set of shadows runs with a sketch
/// of <see cref="LongMemory"/> times the sample period, and the real cache's duels follow the memory of
/// the best shadow.
/// </summary>
/// <remarks>
/// <para>Why not only a hill climber: it needs many samples per step and on short or changing traces it
/// never reaches the right window (sprite at 1,000 entries: 85.0 % against 90.3 % for a fixed 80 %
/// window). The shadows measure every candidate window at once, within about one cache turnover.</para>
/// <para><b>Cost.</b> Each shadow holds tags only (key hash, its own sketch and lists) for at most
/// <see cref="MaxShadowEntries"/> entries (+1); a request is replayed into every shadow when its hash falls in
/// the sample (entry-count capacity: rate 1 up to that many entries, <c>MaxShadowEntries / entries</c> above;
/// byte budget: from 1, halved each time a shadow fills its handles, see <see cref="Downsample"/>), so the work per
/// request is O(number of shadows: 14 up to 2,048 entries, 7 above it or under a byte budget) on a
/// sampled request and O(1) otherwise, and no call allocates.</para>
/// <para>Invariants: for every shadow, <c>_index[s]</c> maps exactly the hashes of its tracked handles
/// to those handles (the shadow policy keeps each tracked handle's hash, <see cref="WTinyLfuPolicy.HashOf"/>), and its free stack holds
/// exactly the untracked handles.</para>
/// </remarks>
internal sealed class WindowShadows
{
    /// <summary>The window fractions the shadows run with, smallest first.</summary>
    internal static readonly double[] Fractions = [0.001, 0.01, 0.05, 0.2, 0.5, 0.8, 0.99];

    /// <summary>The most entries a shadow is sized for; above it the requests are sampled.</summary>
    internal const int MaxShadowEntries = 2048;

    /// <summary>
    /// The long memory: the second set of shadows (and the real cache's second sketch) keeps this many
    /// times the usual sample period. Measured on the whole suite: 4 (LIRS gap 3.23) and 8 (3.21) both
    /// help small caches on loops; 8 lost 0.5 on sprite at 100 and 0.2 on loop at 1,000, so 4.
    /// </summary>
    internal const int LongMemory = 4;

    // Leaving one memory for the other takes a lead of 4 sigmas, not 2: the real cache's contents were
    // chosen by the other sketch, a transition cost the shadows do not see. At 2 sigmas the switch went
    // to the long memory on scan at 1,000 entries on a small lead and lost 3.3 points there.
    private const double MemorySigmas = 4;

    // A second, paired route: two shadows see the same requests, so the noise on their difference is
    // the square root of the requests where exactly one of them hits, far below sqrt(score). A shadow may
    // also take over when its lead over the current one since the last switch exceeds PairSigmas of that
    // (twice as many across memories) and its long-run score is ahead too. On sprite at 2,000/5,000 the
    // 80 % window led the 20 % one by ~0.7 % of the hits, under 2 Poisson sigmas until the trace's end
    // (92.61/93.70 %, now 93.19/94.16; LRU 93.48/94.65). A paired test alone flipped zigzag's phases; at
    // 4 to 6 sigmas this route still flipped on scan at 1,000 (-1.2 to -3.7 points) and multi3 at 5,000
    // (-0.8); at 8 no cell of the suite lost more than 0.1.
    private const double PairSigmas = 8;

    // A decision every eighth of a sampled turnover (at least 32 sampled requests); scores decay by
    // 0.9975 per decision (half-life about 280 decisions, ~35 turnovers): a shorter memory (halved every
    // turnover) made the window flip between the phases of zigzag and of cs, and each flip cost more than
    // it gained. Deciding every eighth rather than every quarter turnover: LIRS gap 3.39 -> 3.37.
    private const int EpochsPerTurnover = 8;
    private const int MinEpoch = 32;
    private const double ScoreDecay = 0.9975;

    // Hysteresis: hits are roughly Poisson, so a lead smaller than two standard deviations (2 sqrt(n))
    // is noise. A switch on noise at the start of cs at 200 entries (1 % -> 5 % and back) cost 3 points.
    private const double NoiseSigmas = 2;

    /// <summary>The index of 1 %, the window the cache starts with (as Caffeine).</summary>
    internal const int InitialBest = 1;

    private readonly WTinyLfuPolicy[] _caches;
    // With an entry-count capacity the shadows of one memory share one sketch, counted once per sampled
    // request here: they see the same requests, with the same seed and size, so private sketches would
    // hold the same counters at every moment (7 or 14 increments per sampled request became 1 or 2).
    // Null under a byte budget, where each shadow's sketch grows with its own resident count.
    private readonly FrequencySketch? _sharedSketch;
    private readonly FrequencySketch? _sharedLongSketch;
    private readonly HashIndex[] _index;
    private readonly int[][] _free;      // stack of untracked handles per shadow
    private readonly int[] _freeCount;
    private readonly double[] _score;    // hits with exponential decay per epoch (recent epochs weigh most)
    private readonly bool[] _hit;        // this request: did shadow s hit
    private readonly double[] _lead;     // since the last switch, decayed: hits of s minus hits of Best
    private readonly double[] _disagree; // since the last switch, decayed: requests where s and Best differ
    private readonly int[] _epochHits;
    private ulong _threshold;            // sampled when the mixed hash's top 24 bits are below it (SetThreshold)
    private readonly ulong _initialThreshold;
    // Byte budget with a handle range above MaxShadowEntries: the sample starts at every key and is halved
    // whenever a shadow runs out of handles (see Downsample). The shadows' capacity is _fullCapacity and their
    // entry bound the handle range, both scaled by the sampled share of the hash space.
    private readonly bool _downsamples;
    private readonly long _fullCapacity;
    private readonly int _maxHandles;
    private int _entryLimit;              // the real cache's handle range at the sample rate when downsampling, else none
    private readonly ulong _salt;
    private int _epochLength;            // sampled requests per decision: an eighth of a shadow turnover
    private int _epochRequests;
    // Shadow s runs window Fractions[s % Fractions.Length]; s >= Fractions.Length: the long memory.

    /// <param name="capacity">The real cache's capacity (entries, or bytes when above <paramref name="maxHandles"/>).</param>
    /// <param name="maxHandles">The real cache's handle range.</param>
    /// <param name="seed">Seeds the sampling and the shadows' sketches.</param>
    /// <param name="shareSketch">Whether entry-count shadows share one sketch per memory (the default; false gives
    /// each shadow its own, the reference the tests compare the shared one with).</param>
    public WindowShadows(long capacity, int maxHandles, int seed, bool shareSketch = true)
    {
        // Under a byte budget the sketches are sized by a first guess and grow with the resident count, at
        // different moments in the shadows and the real cache: a memory switch would compare unlike sketches.
        // Above MaxShadowEntries entries the period (10 x entries accesses) is long in absolute terms, and a
        // long sketch would cost 32 to 64 bytes per entry and a second increment per access (1M entries:
        // 32 MB); no suite cell above 2,048 entries moved with it, so small caches only.
        HasLongMemory = capacity <= maxHandles && capacity <= MaxShadowEntries;
        long entries = Math.Max(1, Math.Min(capacity, maxHandles));
        // Under a byte budget the handle range is only a bound on the resident count (the simulator takes it
        // from the smallest object and the trace's distinct keys; the engine's policies count entries, so this
        // path serves weighted policies only): a rate taken from it left the shadows a few dozen entries on
        // AdaptSize at 4 MiB (580 resident, rate 2,048 / 36,816) and moved W-TinyLFU's figures by up to 2.5
        // points with the range alone (found by review). So there the sample starts at every key and halves
        // when a shadow fills its MaxShadowEntries + 1 handles: the shadows hold between half and all of that
        // whatever the range, and where the range does bind the real cache, it binds the shadows at the same
        // rate (_entryLimit).
        _downsamples = capacity > maxHandles && maxHandles > MaxShadowEntries;
        double rate = _downsamples ? 1.0 : Math.Min(1.0, (double)MaxShadowEntries / entries);
        _initialThreshold = rate >= 1.0 ? FullThreshold : (ulong)Math.Max(1, rate * FullThreshold);
        _fullCapacity = capacity;
        _maxHandles = maxHandles;
        SetThreshold(_initialThreshold);
        _salt = HashMix.SeedOf(seed ^ 0x51AD0);
        long shadowCapacity = Math.Max(1, (long)Math.Round(capacity * rate));
        int shadowHandles = _downsamples
            ? MaxShadowEntries + 1
            : (int)Math.Max(2, Math.Min(maxHandles, Math.Ceiling(entries * rate) + 1));
        _epochLength = (int)Math.Max(MinEpoch, Math.Min(entries * rate, MaxShadowEntries) / EpochsPerTurnover);
        int n = Fractions.Length * (HasLongMemory ? 2 : 1);
        if (shareSketch && shadowCapacity <= shadowHandles)
        {
            // Entry-count shadows: the sketch is sized for the capacity from the start and never grows.
            _sharedSketch = WTinyLfuPolicy.CreateSketch(shadowCapacity, shadowHandles, seed);
            _sharedLongSketch = HasLongMemory ? WTinyLfuPolicy.CreateSketch(shadowCapacity, shadowHandles, seed, LongMemory) : null;
            Debug.Assert(_sharedSketch.ExpectedEntries == _sharedSketch.MaximumEntries, "a shared sketch never resizes");
        }
        _caches = new WTinyLfuPolicy[n];
        _index = new HashIndex[n];
        _free = new int[n][];
        _freeCount = new int[n];
        _score = new double[n];
        _hit = new bool[n];
        _lead = new double[n];
        _disagree = new double[n];
        _epochHits = new int[n];
        for (int s = 0; s < n; s++)
        {
            _caches[s] = new WTinyLfuPolicy(new PolicyOptions
            {
                Capacity = shadowCapacity,
                MaxHandles = shadowHandles,
                WindowFraction = Fractions[s % Fractions.Length],
                Seed = seed,
            }, memory: s < Fractions.Length ? 1 : LongMemory, sharedSketch: s < Fractions.Length ? _sharedSketch : _sharedLongSketch);
            _index[s] = new HashIndex(shadowHandles);
            _free[s] = new int[shadowHandles];
        }
        Clear();
        Best = InitialBest;
    }

    /// <summary>The shadow with the best recent score: <see cref="Fractions"/> index, plus
    /// <c>Fractions.Length</c> for the long memory.</summary>
    public int Best { get; private set; }

    /// <summary>The salt of the sample (<see cref="InSample"/>).</summary>
    internal ulong Salt => _salt;

    /// <summary>The sample's threshold now (<see cref="IsSampled"/>).</summary>
    internal ulong Threshold => _threshold;

    /// <summary>The share of the keys the shadows replay now.</summary>
    internal double SampleRate => _threshold / (double)FullThreshold;

    /// <summary>The threshold that samples every key (the top 24 bits of a mixed hash are always below it).</summary>
    private const ulong FullThreshold = 1UL << 24;

    /// <summary>Sets the sample, and with it the shadows' entry bound when they downsample (the handle range at that share).</summary>
    private void SetThreshold(ulong threshold)
    {
        _threshold = threshold;
        _entryLimit = _downsamples ? (int)Math.Max(1, Math.Ceiling(_maxHandles * SampleRate)) : int.MaxValue;
    }

    /// <summary>The shadows' byte capacity at the current sample (downsampling only).</summary>
    private long ShadowCapacityNow => Math.Max(1, (long)Math.Round(_fullCapacity * SampleRate));

    /// <summary>The shadows' capacity now (all have the same).</summary>
    internal long ShadowCapacity => _caches[0].Capacity;

    /// <summary>The most entries any shadow holds now.</summary>
    internal int LargestShadowCount => _caches.Max(c => c.Count);

    /// <summary>Whether the shadows of each memory share one sketch (entry-count capacity).</summary>
    internal bool SharesSketch => _sharedSketch is not null;

    /// <summary>Whether a second set of shadows runs the long memory (entry-count capacity up to
    /// <see cref="MaxShadowEntries"/> entries only).</summary>
    public bool HasLongMemory { get; }

    /// <summary>The window fraction of shadow <paramref name="best"/> (a <see cref="Best"/> value).</summary>
    public static double FractionOf(int best) => Fractions[best % Fractions.Length];

    /// <summary>Whether shadow <paramref name="best"/> (a <see cref="Best"/> value) runs the long memory.</summary>
    public static bool IsLongMemory(int best) => best >= Fractions.Length;

    /// <summary>Replays one request (hit or miss in the real cache) if its key is in the sample;
    /// returns true when a decision epoch ended and <see cref="Best"/> may have changed.</summary>
    public bool Record(ulong keyHash, long weight) => IsSampled(keyHash) && RecordSampled(keyHash, weight);

    /// <summary>Whether a request for this key is in the sample the shadows replay (a fixed, seeded share of the keys).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool IsSampled(ulong keyHash) => InSample(keyHash, _salt, _threshold);

    /// <summary>The sample's rule, for a copy of <see cref="Salt"/> and <see cref="Threshold"/> (<see cref="HitSkipFilter"/>
    /// tests it without the owner's lock): whether the top 24 bits of the salted, mixed hash are below the threshold.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static bool InSample(ulong keyHash, ulong salt, ulong threshold) => (HashMix.Mix(keyHash ^ salt) >> 40) < threshold;

    /// <summary><see cref="Record"/> for a request already found <see cref="IsSampled"/>.</summary>
    public bool RecordSampled(ulong keyHash, long weight)
    {
        Debug.Assert(IsSampled(keyHash), "only sampled requests are replayed");
        if (_downsamples && AnyShadowFull() && _threshold > 1)
        {
            Downsample();
            if (!IsSampled(keyHash))
            {
                return false;   // this key left the sample: the shadows no longer see it
            }
        }
        // The one access of this request, for every shadow sharing the sketch (each shadow's OnHit or
        // OnMiss below counted it in a private sketch before any of its duels read it: same state).
        _sharedSketch?.Increment(keyHash);
        _sharedLongSketch?.Increment(keyHash);
        for (int s = 0; s < _caches.Length; s++)
        {
            _hit[s] = Replay(s, keyHash, weight);
        }
        bool bestHit = _hit[Best];
        for (int s = 0; s < _caches.Length; s++)
        {
            if (_hit[s] != bestHit)
            {
                _disagree[s]++;
                _lead[s] += _hit[s] ? 1 : -1;
            }
        }
        if (++_epochRequests < _epochLength)
        {
            return false;
        }
        _epochRequests = 0;
        int best = Best;
        for (int s = 0; s < _caches.Length; s++)
        {
            _score[s] = ScoreDecay * _score[s] + _epochHits[s];
            _epochHits[s] = 0;
        }
        int top = 0;
        for (int s = 1; s < _caches.Length; s++)
        {
            if (_score[s] > _score[top])
            {
                top = s;
            }
        }
        // Hysteresis: leave the current window only for a shadow that beats it by more than noise.
        double sigmas = CrossesMemory(top, best) ? MemorySigmas : NoiseSigmas;
        if (_score[top] > _score[best] + sigmas * Math.Sqrt(_score[best] + 1))
        {
            best = top;
        }
        else
        {
            // The paired route (see PairSigmas): lead and disagreements decay like the scores.
            int challenger = -1;
            for (int s = 0; s < _caches.Length; s++)
            {
                _lead[s] *= ScoreDecay;
                _disagree[s] *= ScoreDecay;
                if (s != best && (challenger < 0 || _lead[s] > _lead[challenger]))
                {
                    challenger = s;
                }
            }
            double pairSigmas = CrossesMemory(challenger, best) ? 2 * PairSigmas : PairSigmas;
            if (challenger >= 0 && _lead[challenger] > pairSigmas * Math.Sqrt(_disagree[challenger] + 1) && _score[challenger] > _score[best])
            {
                best = challenger;
            }
        }
        if (best != Best)
        {
            Array.Clear(_lead);
            Array.Clear(_disagree);
        }
        Best = best;

        return true;
    }

    private bool AnyShadowFull()
    {
        for (int s = 0; s < _caches.Length; s++)
        {
            if (_freeCount[s] == 0)
            {
                return true;
            }
        }
        return false;
    }

    /// <summary>
    /// Halves the sample (a byte budget whose shadows ran out of handles: they model a cache holding more
    /// entries than MaxShadowEntries / rate). The sampled keys of the lower rate are a subset of the current
    /// ones (a lower threshold on the same hash), so each shadow forgets the keys that left, its capacity
    /// halves with the hash space it models, and it evicts what no longer fits, keeping the state of the
    /// rest (as SHARDS's adaptive rate; Waldspurger et al., FAST 2015). Scores go on: every shadow lost the
    /// same keys. O(handles) per halving, at most 24 halvings in the shadows' life (and again after Clear).
    /// </summary>
    private void Downsample()
    {
        // The real cache holds at most _maxHandles entries, so a sample of it at most that share of them (once
        // below MaxShadowEntries + 1, it binds before the handles run out and the sample stops halving).
        SetThreshold(_threshold >> 1);
        long capacity = ShadowCapacityNow;
        for (int s = 0; s < _caches.Length; s++)
        {
            WTinyLfuPolicy cache = _caches[s];
            for (int h = 0; h < _free[s].Length; h++)
            {
                if (cache.TracksHandle(h) && !IsSampled(cache.HashOf(h)))
                {
                    _index[s].Remove(cache.HashOf(h));
                    cache.OnRemove(h);
                    _free[s][_freeCount[s]++] = h;
                }
            }
            cache.SetShadowCapacity(capacity);
            while (cache.Weight > cache.Capacity || cache.Count > _entryLimit)
            {
                Evict(s);
            }
            cache.ShrinkShadowSketch();
        }
    }

    /// <summary>
    /// The real cache's share capacity moved (<see cref="PolicyBase.ShareCapacity"/>: its owner's own bound binds before the
    /// entry capacity, as an engine's byte budget): the shadows model a cache of
    /// <paramref name="capacity"/> entries from now on, so their capacity, their shared sketches' sample periods and
    /// the decision epoch follow it, and each shadow evicts what no longer fits. Entry-count shadows only (downsampling
    /// shadows model a byte-budget policy, whose owner evicts over the capacity). Only the shared sketches' periods follow:
    /// shadows with sketches of their own (the tests' reference, <c>shareSketch: false</c>) keep theirs.
    /// </summary>
    public void FollowCapacity(long capacity)
    {
        long shadowCapacity = Math.Max(1, (long)Math.Round(capacity * SampleRate));
        if (_downsamples || shadowCapacity == _caches[0].Capacity)
        {
            return;
        }
        long entries = Math.Max(1, Math.Min(capacity, _maxHandles));
        _epochLength = (int)Math.Max(MinEpoch, Math.Min(entries * SampleRate, MaxShadowEntries) / EpochsPerTurnover);
        _sharedSketch?.SetSamplePeriodFor(shadowCapacity);
        _sharedLongSketch?.SetSamplePeriodFor(shadowCapacity * LongMemory);
        for (int s = 0; s < _caches.Length; s++)
        {
            _caches[s].SetShadowCapacity(shadowCapacity);
            while (_caches[s].Weight > _caches[s].Capacity)
            {
                Evict(s);
            }
        }
    }

    /// <summary>Whether shadows <paramref name="a"/> and <paramref name="b"/> run different sketch memories.</summary>
    private static bool CrossesMemory(int a, int b) => (a >= Fractions.Length) != (b >= Fractions.Length);

    /// <summary>Replays one request into shadow <paramref name="s"/>; true when it was a hit there.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private bool Replay(int s, ulong keyHash, long weight)
    {
        int handle = _index[s].Find(keyHash);
        if (handle < 0)
        {
            return ReplayMiss(s, keyHash, weight);
        }
        _epochHits[s]++;
        if (_sharedSketch is not null)
        {
            _caches[s].OnSharedSketchHit(handle);   // the shared sketch counted this request already
        }
        else
        {
            _caches[s].OnHit(handle, keyHash);
        }
        return true;
    }

    /// <summary>The miss half of <see cref="Replay"/>: the shadow counts the key and admits it, evicting as needed.</summary>
    private bool ReplayMiss(int s, ulong keyHash, long weight)
    {
        WTinyLfuPolicy cache = _caches[s];
        cache.OnMiss(keyHash);
        if (weight > cache.Capacity)
        {
            return false;
        }
        while (_freeCount[s] == 0 || cache.Count >= _entryLimit)
        {
            Evict(s);
        }
        int handle = _free[s][--_freeCount[s]];
        _index[s].Add(keyHash, handle);
        cache.OnAdd(handle, keyHash, weight);
        while (cache.Weight > cache.Capacity)
        {
            Evict(s);
        }
        return false;
    }

    private void Evict(int s)
    {
        int victim = _caches[s].SelectVictim();
        Debug.Assert(victim >= 0, "a shadow over its limits has a victim");
        _index[s].Remove(_caches[s].HashOf(victim));   // read while the shadow still tracks it
        _caches[s].OnRemove(victim);
        _free[s][_freeCount[s]++] = victim;
    }

    /// <summary>Forgets every shadow's contents and scores.</summary>
    public void Clear()
    {
        SetThreshold(_initialThreshold);
        for (int s = 0; s < _caches.Length; s++)
        {
            _caches[s].Clear();
            if (_downsamples)
            {
                _caches[s].SetShadowCapacity(ShadowCapacityNow);   // empty: only the limits change
            }
            _index[s].Clear();
            int[] free = _free[s];
            for (int i = 0; i < free.Length; i++)
            {
                free[i] = free.Length - 1 - i;
            }
            _freeCount[s] = free.Length;
            _score[s] = 0;
            _epochHits[s] = 0;
            _lead[s] = 0;
            _disagree[s] = 0;
        }
        _epochRequests = 0;
        Best = InitialBest;
    }

    internal void ValidateInvariants()
    {
        _sharedSketch?.ValidateInvariants();
        _sharedLongSketch?.ValidateInvariants();
        for (int s = 0; s < _caches.Length; s++)
        {
            _caches[s].ValidateInvariants();
            _index[s].ValidateInvariants();
            if (_index[s].Count != _caches[s].Count || _freeCount[s] + _caches[s].Count != _free[s].Length)
            {
                throw new InvalidOperationException($"window shadow {s}: index {_index[s].Count}, tracked {_caches[s].Count}, free {_freeCount[s]} of {_free[s].Length}");
            }
            if (_caches[s].Weight > _caches[s].Capacity || _caches[s].Count > _entryLimit)
            {
                throw new InvalidOperationException($"window shadow {s} holds {_caches[s].Weight} of {_caches[s].Capacity} ({_caches[s].Count} entries, limit {_entryLimit})");
            }
            for (int h = 0; h < _free[s].Length; h++)
            {
                if (_caches[s].TracksHandle(h) && !IsSampled(_caches[s].HashOf(h)))
                {
                    throw new InvalidOperationException($"window shadow {s} tracks handle {h}, whose key left the sample");
                }
            }
        }
    }
}
