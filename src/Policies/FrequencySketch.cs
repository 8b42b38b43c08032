using System.Diagnostics;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace CacheKit.Policies;

/// <summary>
/// A 4-bit count-min sketch with periodic halving (aging) and a doorkeeper Bloom filter: the
/// popularity estimate behind TinyLFU admission, after Caffeine's <c>FrequencySketch</c> and
/// BitFaster's <c>CmSketchCore</c>.
/// </summary>
/// <remarks>
/// <para><b>Layout.</b> <c>_table</c> is an array of 64-bit words, each holding sixteen 4-bit
/// counters <c>[c15 .. c0]</c>, grouped in blocks of 8 words from <c>_tableBase</c> (the array is pinned
/// and the base 64-byte aligned, so a block is exactly one cache line). A key picks
/// one block from its hash, then one counter for each of the 4 rows, row <c>i</c> living in words
/// <c>2i</c> and <c>2i+1</c> of the block. The estimate is the minimum of the 4 counters.</para>
/// <para><b>Doorkeeper.</b> A key's first sighting only sets its bits in a Bloom filter; the
/// counters start counting from the second. The estimate adds 1 when the doorkeeper holds the key.
/// This keeps one-hit wonders out of the counters (TinyLFU, Einziger et al.). The doorkeeper has two
/// generations, current and previous: a key in either is known. An insert checks the current generation
/// first: a key seen in it already has its bits set, so the previous generation's words are not compared (the
/// result and the bits are those of checking the previous one first).</para>
/// <para><b>Doorkeeper layout (blocked).</b> The filter is one pinned array of 64-byte blocks, each one cache line:
/// words 0-3 hold 256 bits of one generation, words 4-7 the same 256 positions of the other
/// (<c>_currentHalf</c> says which is current). A key picks one block from its hash and sets 4 bits in
/// the current half, one in each of its 4 words, so an insert or a lookup reads one cache line for both
/// generations. Until 2026-11-29 3 bits were anywhere in two separate arrays: up to six random lines per access,
/// all prefetched on every replayed read of a large cache. A blocked filter's false-positive rate is higher at
/// the same bits and probes (the blocks' loads vary), hence 4 probes instead of 3 (at 8 bits per key: 2.7 %
/// measured, against 3.1 % before). Measured: valgrind's cache simulation (8 MiB last level) counts 0.84 fewer
/// last-level and 3.6 fewer first-level misses per get hit at 1M entries; the simulator's LIRS mean gap to OPT
/// on 12 seeds 3.179 → 3.182 (docs/engine.md, "blocked doorkeeper", has the rest).</para>
/// <para><b>Aging.</b> After <see cref="SampleSize"/> recorded accesses (10 per expected entry) every
/// counter is halved; the next halving comes half a period later, as in Caffeine. At each halving the
/// doorkeeper ages by one generation (the previous one is dropped, the current one becomes previous)
/// instead of being wiped: wiping it, as the TinyLFU paper does, cost 0.3 points of hit ratio on average
/// over the LIRS traces and more on small caches (loop at 100 entries: 0% against 5%), because every key
/// then lost its first count at every halving.</para>
/// <para><b>Concurrency.</b> Not synchronised (its owners call it under their lock). Concurrent increments may lose
/// updates (each word is read, modified and written; the vector form writes a half block's 4 words at once, so it may
/// lose a neighbouring key's too) but can never corrupt the structure: every index is masked.</para>
/// <para>Invariants: the words in use are a power of two, at least 8, and fit the table from <c>_tableBase</c>;
/// the doorkeeper blocks in use are a power of two, at least 1, and fit the doorkeeper from <c>_doorkeeperBase</c>;
/// <c>_currentHalf</c> is 0 or 4; every counter is at most 15;
/// <c>_size &lt; SampleSize</c> between calls.</para>
/// </remarks>
internal sealed class FrequencySketch
{
    private const ulong ResetMask = 0x7777_7777_7777_7777UL;

    private readonly ulong[] _table;          // pinned, allocated for MaximumEntries; the words in use start at _tableBase
    private readonly int _tableBase;          // first word on a 64-byte boundary (0..7)
    private int _blockMask;                   // (_words / 8) - 1
    private readonly ulong[] _doorkeeper;     // pinned blocks of 8 words from _doorkeeperBase: 4 of each generation (see remarks)
    private readonly int _doorkeeperBase;     // first word on a 64-byte boundary (0..7)
    private int _doorkeeperBlockMask;         // blocks in use - 1
    private int _currentHalf;                 // 0 or 4: the word offset, inside a block, of the current generation
    private readonly ulong _seed;
    private int _size;                        // accesses recorded since the last reset

    /// <summary>Creates a sketch for about <paramref name="expectedEntries"/> distinct resident keys.</summary>
    /// <param name="expectedEntries">The cache's entry count, at least 1 (for a byte budget: a first guess).</param>
    /// <param name="seed">Seed folded into the hashing.</param>
    /// <param name="doorkeeper">Whether to put a doorkeeper Bloom filter in front of the counters.</param>
    /// <param name="maximumEntries">The most entries <see cref="EnsureCapacity"/> may grow to (memory is
    /// allocated for it now); defaults to <paramref name="expectedEntries"/>.</param>
    public FrequencySketch(long expectedEntries, int seed, bool doorkeeper = true, long maximumEntries = 0)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(expectedEntries);
        MaximumEntries = Math.Min(Math.Max(maximumEntries, expectedEntries), MaxEntries);
        int maxWords = WordsFor(MaximumEntries);
        _table = AllocateAligned(maxWords, out _tableBase);
        _seed = HashMix.SeedOf(seed);
        _doorkeeper = doorkeeper ? AllocateAligned(DoorkeeperBlocksFor(MaximumEntries) * DoorkeeperBlockWords, out _doorkeeperBase) : [];
        Resize(Math.Min(expectedEntries, MaximumEntries));
    }

    private const long MaxEntries = 1 << 26;

    /// <summary>The entry count the sketch is sized for now.</summary>
    public long ExpectedEntries { get; private set; }

    /// <summary>The largest entry count the preallocated memory can serve.</summary>
    public long MaximumEntries { get; }

    /// <summary>Accesses between two halvings (10 per expected entry).</summary>
    public int SampleSize { get; private set; }

    /// <summary>
    /// Grows the sketch when a cache with a byte budget holds more entries than it was sized for, as
    /// Caffeine does for weighted caches. No allocation: the memory for <see cref="MaximumEntries"/> was
    /// taken up front. Growing doubles the size at least and forgets the history, so it happens at most
    /// log2(maximum / expected) times.
    /// </summary>
    /// <param name="entries">The number of entries now resident.</param>
    public void EnsureCapacity(long entries)
    {
        if (entries > ExpectedEntries && ExpectedEntries < MaximumEntries)
        {
            Resize(Math.Min(Math.Max(entries, 2 * ExpectedEntries), MaximumEntries));
            Clear();
        }
    }

    /// <summary>
    /// Sizes the sketch down to <paramref name="entries"/> (at least 64) and forgets the history, as growing
    /// does: a window shadow whose sample was halved holds half the entries it was sized for.
    /// </summary>
    internal void ShrinkTo(long entries)
    {
        long size = Math.Max(entries, 64);
        if (size < ExpectedEntries)
        {
            Resize(size);
            Clear();
        }
    }

    /// <summary>
    /// Sets the sample period (accesses between halvings) for <paramref name="entries"/> entries, 10 accesses each, at
    /// most the period of the size it has (<see cref="ExpectedEntries"/>), without touching the counters: a cache whose
    /// other bound holds it below its entry capacity ages its counts at the pace of the entries it holds (at the
    /// capacity's pace, a workload's old favourites outlived it by as many times as the capacity exceeds what is held).
    /// A period already past its new end halves once now.
    /// </summary>
    internal void SetSamplePeriodFor(long entries)
    {
        SampleSize = (int)(10 * Math.Clamp(entries, 1, ExpectedEntries));
        if (_size >= SampleSize)
        {
            Reset();
            _size = Math.Min(_size, SampleSize - 1);
        }
    }

    /// <summary>A pinned array with 7 spare words, and the index of its first word on a 64-byte boundary.</summary>
    private static ulong[] AllocateAligned(int words, out int baseIndex)
    {
        // Pinned (never moved by the GC), so the alignment found now holds for the array's life.
        ulong[] array = GC.AllocateArray<ulong>(words + 7, pinned: true);
        baseIndex = MemoryPrefetch.WordsToCacheLine(array);
        return array;
    }

    private static int WordsFor(long entries) => (int)Math.Max(BitOperations.RoundUpToPowerOf2((ulong)entries), 8);

    // 4 bits per access of a sample period, per generation (from the first halving on at most half a period of
    // distinct keys lands in one generation, 8 bits per key): 4 probes, one per word of a 256-bit block, give about
    // 2.7 % false positives there (see the remarks). The first generation after construction or a Clear lasts a
    // whole period, up to 4 bits per key (a review measured 16.6 % false positives at its end, 6,553 entries). 8 bits per access measured no better (with 3 unblocked probes).
    // At most 2^30 bits (128 MiB per generation): from 26.8M entries per sketch (one shard of a very large
    // cache) the doorkeeper gets fewer than 40 bits per entry (16 at the 2^26 maximum). Without the cap the
    // power of two reached 2^31 and 2^32, which the int cast turned into a negative array length (the
    // constructor threw) or 0 (the doorkeeper silently vanished).
    internal static int DoorkeeperBitsFor(long entries)
        => (int)Math.Clamp(BitOperations.RoundUpToPowerOf2((ulong)(10 * entries * 4)), 64, MaxDoorkeeperBits);

    private const ulong MaxDoorkeeperBits = 1UL << 30;

    // A doorkeeper block is one 64-byte line: a half of DoorkeeperHalfWords words (256 bits) per generation.
    private const int DoorkeeperHalfWords = 4;
    private const int DoorkeeperBlockWords = 2 * DoorkeeperHalfWords;

    // Blocks of the doorkeeper: each holds 256 bits of a generation.
    private static int DoorkeeperBlocksFor(long entries) => Math.Max(DoorkeeperBitsFor(entries) >> 8, 1);

    private void Resize(long entries)
    {
        ExpectedEntries = entries;
        _blockMask = (WordsFor(entries) >> 3) - 1;
        SampleSize = (int)(10 * entries);
        _doorkeeperBlockMask = HasDoorkeeper ? DoorkeeperBlocksFor(entries) - 1 : 0;
    }

    /// <summary>Accesses recorded since the last halving.</summary>
    public int Size => _size;

    /// <summary>Whether a doorkeeper filter sits in front of the counters.</summary>
    public bool HasDoorkeeper => _doorkeeper.Length > 0;

    /// <summary>Bytes of managed memory held.</summary>
    public long FootprintBytes => ((long)_table.Length + _doorkeeper.Length) * sizeof(ulong);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private int BlockOf(ulong h) => _tableBase + ((int)((uint)h & (uint)_blockMask) << 3);

    /// <summary>The estimated number of accesses to <paramref name="keyHash"/> in the recent past, 0..16.</summary>
    public int Frequency(ulong keyHash)
    {
        ulong h = Mix(keyHash);
        ref ulong block = ref BlockRef(h);
        uint counterHash = (uint)(h >> 32);
        int min = 15;
        for (int i = 0; i < 4; i++)
        {
            uint c = counterHash >> (i << 3);
            int index = (int)(c >> 1) & 15;
            // SAFETY: the word index is (i << 1) + (c & 1) <= 7, inside the 8-word block (BlockRef).
            int count = (int)(Unsafe.Add(ref block, (i << 1) + (int)(c & 1)) >> (index << 2)) & 0xF;
            min = Math.Min(min, count);
        }
        if (HasDoorkeeper && DoorkeeperContains(h))
        {
            min++;
        }
        return min;
    }

    /// <summary>The key's mixed hash (seeded): what <see cref="PrefetchMixed"/> and <see cref="IncrementMixed"/> take,
    /// so that a caller doing both for one key mixes it once.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public ulong Mix(ulong keyHash) => HashMix.Mix(keyHash ^ _seed);

    /// <summary>
    /// Prefetch hint: the counter block and the doorkeeper block (one aligned line each) that
    /// <see cref="Increment"/> and <see cref="Frequency"/> of this key read. No state change.
    /// </summary>
    public void Prefetch(ulong keyHash) => PrefetchMixed(Mix(keyHash));

    /// <summary><see cref="Prefetch"/> for a hash already mixed by <see cref="Mix"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void PrefetchMixed(ulong h)
    {
        MemoryPrefetch.At(ref BlockRef(h));
        if (HasDoorkeeper)
        {
            MemoryPrefetch.At(ref DoorkeeperBlockRef(DoorkeeperBlockOf(DoorkeeperProbe(h))));
        }
    }

    /// <summary>Records one access to <paramref name="keyHash"/>; halves everything when a sample period ends.</summary>
    public void Increment(ulong keyHash) => IncrementMixed(Mix(keyHash));

    /// <summary><see cref="Increment"/> for a hash already mixed by <see cref="Mix"/>.</summary>
    /// <remarks>With AVX2, 8 words at a time (<see cref="IncrementMixedVector"/>), else one counter and one doorkeeper
    /// word at a time (<see cref="IncrementMixedScalar"/>): the same words change in the same way (tests compare them).</remarks>
    public void IncrementMixed(ulong h)
    {
        if (Avx2.IsSupported)
        {
            IncrementMixedVector(h);
        }
        else
        {
            IncrementMixedScalar(h);
        }
    }

    /// <summary>The portable form of <see cref="IncrementMixed"/>.</summary>
    internal void IncrementMixedScalar(ulong h)
    {
        if (HasDoorkeeper && DoorkeeperAdd(h))
        {
            // First sighting in this period: only the doorkeeper remembers it.
            CountAndMaybeReset();
            return;
        }
        // The 4 rows of the key's block, unrolled; each counter goes up by one unless it is at 15
        // (branch-free: the add is 0 exactly when the nibble is 15).
        ref ulong block = ref BlockRef(h);
        uint counterHash = (uint)(h >> 32);
        IncrementCounter(ref block, counterHash, 0);
        IncrementCounter(ref block, counterHash, 1);
        IncrementCounter(ref block, counterHash, 2);
        IncrementCounter(ref block, counterHash, 3);
        CountAndMaybeReset();
    }

    /// <summary>
    /// <see cref="IncrementMixedScalar"/> in 256-bit vectors (the instructions of an increment about halve: it runs on
    /// every replayed read). Lanes of the counter block's low half are words 0-3 (rows 0, 0, 1, 1), of its high half
    /// words 4-7 (rows 2, 2, 3, 3); each lane takes its row's byte of the counter hash, and only the lane whose word
    /// parity is the row's choice bit is active. The doorkeeper's 4 probes are the 4 lanes of one half-block.
    /// </summary>
    internal void IncrementMixedVector(ulong h)
    {
        Debug.Assert(Avx2.IsSupported, "only called where AVX2 is supported");
        if (HasDoorkeeper && DoorkeeperAddVector(h))
        {
            CountAndMaybeReset();   // first sighting in this period: only the doorkeeper remembers it
            return;
        }
        ref ulong block = ref BlockRef(h);
        Vector256<ulong> counterHash = Vector256.Create(h >> 32);
        IncrementHalfBlock(ref block, Avx2.ShiftRightLogicalVariable(counterHash, Vector256.Create(0UL, 0, 8, 8)));
        // SAFETY: words 4-7 of the key's 8-word block (BlockRef).
        IncrementHalfBlock(ref Unsafe.Add(ref block, 4), Avx2.ShiftRightLogicalVariable(counterHash, Vector256.Create(16UL, 16, 24, 24)));
        CountAndMaybeReset();
    }

    /// <summary>Four words of a counter block, each lane's row byte of the counter hash in <paramref name="rowBytes"/>
    /// (bit 0 chooses the row's word, bits 1-4 its nibble): the chosen counter of each row plus one unless at 15.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void IncrementHalfBlock(ref ulong words, Vector256<ulong> rowBytes)
    {
        Vector256<ulong> chosen = Vector256.Equals(rowBytes & Vector256<ulong>.One, Vector256.Create(0UL, 1, 0, 1));
        Vector256<ulong> shift = (rowBytes << 1) & Vector256.Create(0x3CUL);   // the nibble's bit offset, as the scalar form
        // SAFETY: the caller passes 4 words inside the key's block (BlockRef's 8 words).
        Vector256<ulong> current = Vector256.LoadUnsafe(ref words);
        Vector256<ulong> nibble = Avx2.ShiftRightLogicalVariable(current, shift) & Vector256.Create(0xFUL);
        Vector256<ulong> add = Avx2.ShiftLeftLogicalVariable(Vector256<ulong>.One, shift)
            & chosen & ~Vector256.Equals(nibble, Vector256.Create(0xFUL));
        (current + add).StoreUnsafe(ref words);
    }

    /// <summary>The first word of the key's block (8 words, one aligned cache line).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private ref ulong BlockRef(ulong h)
    {
        int block = BlockOf(h);
        Debug.Assert(block >= 0 && block + 8 <= _table.Length, "the block lies inside the table");
        // SAFETY: BlockOf masks the block number with _blockMask, and the invariant (Resize, ValidateInvariants)
        // is _tableBase + (_blockMask + 1) * 8 <= _table.Length, so all 8 words from `block` are in the array;
        // the array is a readonly field, alive as long as this object.
        return ref Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(_table), block);
    }

    /// <summary>Row <paramref name="row"/>'s counter for this key (word 2 row + a hash bit, nibble from 4 hash bits), plus one unless saturated.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void IncrementCounter(ref ulong block, uint counterHash, int row)
    {
        uint c = counterHash >> (row << 3);
        int shift = (int)(c << 1) & 0x3C;   // ((c >> 1) & 15) * 4: the nibble's bit offset
        // SAFETY: the word index is (row << 1) + (c & 1) <= 7, inside the 8-word block (BlockRef).
        ref ulong word = ref Unsafe.Add(ref block, (row << 1) + (int)(c & 1));
        ulong nibble = (word >> shift) & 0xF;
        word += (((nibble + 1) >> 4) ^ 1) << shift;
    }

    /// <summary>Forgets all history.</summary>
    public void Clear()
    {
        Array.Clear(_table);
        Array.Clear(_doorkeeper);
        _size = 0;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void CountAndMaybeReset()
    {
        if (++_size >= SampleSize)
        {
            Reset();
        }
    }

    /// <summary>Halves every counter and ages the doorkeeper by one generation.</summary>
    internal void Reset()
    {
        int end = _tableBase + (_blockMask + 1) * 8;
        for (int i = _tableBase; i < end; i++)
        {
            _table[i] = (_table[i] >> 1) & ResetMask;
        }
        if (HasDoorkeeper)
        {
            // The previous generation is dropped: its half of every block in use becomes the (empty) current one.
            _currentHalf ^= DoorkeeperHalfWords;
            int doorkeeperEnd = _doorkeeperBase + (_doorkeeperBlockMask + 1) * DoorkeeperBlockWords;
            for (int i = _doorkeeperBase + _currentHalf; i < doorkeeperEnd; i += DoorkeeperBlockWords)
            {
                _doorkeeper.AsSpan(i, DoorkeeperHalfWords).Clear();
            }
        }
        // As in Caffeine: the halved counters still hold half the period's weight, so the next
        // halving comes after half a period.
        _size >>= 1;
    }

    /// <summary>The key's 4 doorkeeper bits, one per word of a 4-word half of its block (the same positions in
    /// both generations; the block is <see cref="DoorkeeperBlockOf"/>).</summary>
    private readonly struct DoorkeeperProbes
    {
        public readonly ulong Mask0, Mask1, Mask2, Mask3;

        /// <summary>The bits of the key whose <see cref="DoorkeeperProbe"/> is <paramref name="probe"/>.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public DoorkeeperProbes(ulong probe)
        {
            // One bit in each of the half's 4 words (a sectorised filter: the false-positive rate of 4 probes
            // anywhere in the 256 bits, for 2 instructions per probe).
            Mask0 = 1UL << (int)probe;   // shift counts are taken mod 64: bits 0-5
            Mask1 = 1UL << (int)(probe >> 6);
            Mask2 = 1UL << (int)(probe >> 12);
            Mask3 = 1UL << (int)(probe >> 18);
        }

        /// <summary>Whether all 4 bits are set in the 4 words from <paramref name="half"/>.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public bool AllSetIn(ref ulong half)
            => (((half & Mask0) ^ Mask0) | ((Unsafe.Add(ref half, 1) & Mask1) ^ Mask1)
                | ((Unsafe.Add(ref half, 2) & Mask2) ^ Mask2) | ((Unsafe.Add(ref half, 3) & Mask3) ^ Mask3)) == 0;

        /// <summary>Sets the 4 bits in the 4 words from <paramref name="half"/>.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public void SetIn(ref ulong half)
        {
            half |= Mask0;
            Unsafe.Add(ref half, 1) |= Mask1;
            Unsafe.Add(ref half, 2) |= Mask2;
            Unsafe.Add(ref half, 3) |= Mask3;
        }
    }

    /// <summary>The doorkeeper's hash of a mixed key hash, from which its block and bits are taken.</summary>
    /// <remarks>Rotated and multiplied: the block (bits 40-63 of the product) depends on every bit of h, so keys
    /// that share a counter block (the low bits of h) do not tend to share a doorkeeper block. The 4 bit
    /// positions (bits 0-23) are a bijection of h's bits 21-44, which overlap the counters' choice in part
    /// (as the unblocked filter's first probe took the counter block's own bits).</remarks>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static ulong DoorkeeperProbe(ulong h) => BitOperations.RotateRight(h, 21) * 0x9E3779B97F4A7C15UL;

    /// <summary>The doorkeeper block (in use) of a <see cref="DoorkeeperProbe"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private int DoorkeeperBlockOf(ulong probe) => (int)(probe >> 40) & _doorkeeperBlockMask;

    /// <summary>The first word of doorkeeper block <paramref name="block"/> (both generations).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private ref ulong DoorkeeperBlockRef(int block)
    {
        int first = _doorkeeperBase + (block * DoorkeeperBlockWords);
        Debug.Assert(HasDoorkeeper && first >= 0 && first + DoorkeeperBlockWords <= _doorkeeper.Length, "the doorkeeper block lies inside the array");
        // SAFETY: block comes from DoorkeeperBlockOf, masked with _doorkeeperBlockMask, and the invariant (Resize,
        // ValidateInvariants) is _doorkeeperBase + (_doorkeeperBlockMask + 1) * 8 <= _doorkeeper.Length, so the block's 8 words are in the
        // array; callers check HasDoorkeeper first; the array is a readonly field, alive as long as this object.
        return ref Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(_doorkeeper), first);
    }

    /// <summary>Sets the key's bits in the current generation; true when the key was in neither generation (it is new).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private bool DoorkeeperAdd(ulong h)
    {
        ulong probe = DoorkeeperProbe(h);
        var probes = new DoorkeeperProbes(probe);
        ref ulong block = ref DoorkeeperBlockRef(DoorkeeperBlockOf(probe));
        ref ulong current = ref Unsafe.Add(ref block, _currentHalf);   // SAFETY: _currentHalf is 0 or 4: a half of the block
        if (probes.AllSetIn(ref current))
        {
            return false;   // in the current generation: its bits are set already
        }
        probes.SetIn(ref current);
        return !probes.AllSetIn(ref Unsafe.Add(ref block, _currentHalf ^ DoorkeeperHalfWords));
    }

    /// <summary><see cref="DoorkeeperAdd"/> with the 4 probes as the lanes of one vector.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private bool DoorkeeperAddVector(ulong h)
    {
        ulong probe = DoorkeeperProbe(h);
        // One bit per word: bits 0-5, 6-11, 12-17 and 18-23 of the probe, as DoorkeeperProbes' masks.
        Vector256<ulong> positions = Avx2.ShiftRightLogicalVariable(Vector256.Create(probe), Vector256.Create(0UL, 6, 12, 18)) & Vector256.Create(63UL);
        Vector256<ulong> bits = Avx2.ShiftLeftLogicalVariable(Vector256<ulong>.One, positions);
        ref ulong block = ref DoorkeeperBlockRef(DoorkeeperBlockOf(probe));
        ref ulong current = ref Unsafe.Add(ref block, _currentHalf);   // SAFETY: _currentHalf is 0 or 4: a half of the block
        Vector256<ulong> words = Vector256.LoadUnsafe(ref current);
        if ((words & bits) == bits)
        {
            return false;   // in the current generation: its bits are set already
        }
        (words | bits).StoreUnsafe(ref current);
        // SAFETY: _currentHalf ^ 4 is the block's other half.
        return (Vector256.LoadUnsafe(ref Unsafe.Add(ref block, _currentHalf ^ DoorkeeperHalfWords)) & bits) != bits;
    }

    private bool DoorkeeperContains(ulong h)
    {
        ulong probe = DoorkeeperProbe(h);
        var probes = new DoorkeeperProbes(probe);
        ref ulong block = ref DoorkeeperBlockRef(DoorkeeperBlockOf(probe));
        return probes.AllSetIn(ref block) || probes.AllSetIn(ref Unsafe.Add(ref block, DoorkeeperHalfWords));
    }

    /// <summary>Whether this sketch's counters, doorkeeper, generation and period count equal <paramref name="other"/>'s (tests).</summary>
    internal bool SameStateAs(FrequencySketch other)
        => _blockMask == other._blockMask && _doorkeeperBlockMask == other._doorkeeperBlockMask && _size == other._size
            && _currentHalf == other._currentHalf
            && _table.AsSpan(_tableBase, (_blockMask + 1) * 8).SequenceEqual(other._table.AsSpan(other._tableBase, (other._blockMask + 1) * 8))
            && (!HasDoorkeeper || _doorkeeper.AsSpan(_doorkeeperBase, (_doorkeeperBlockMask + 1) * DoorkeeperBlockWords)
                .SequenceEqual(other._doorkeeper.AsSpan(other._doorkeeperBase, (other._doorkeeperBlockMask + 1) * DoorkeeperBlockWords)));

    /// <summary>Debug check: counters are 4-bit by construction; the size is below the sample size.</summary>
    internal void ValidateInvariants()
    {
        Debug.Assert(BitOperations.IsPow2(_blockMask + 1), "blocks in use must be a power of two");
        if (_tableBase + (_blockMask + 1) * 8 > _table.Length
            || (HasDoorkeeper && _doorkeeperBase + (_doorkeeperBlockMask + 1) * DoorkeeperBlockWords > _doorkeeper.Length)
            || (_currentHalf & ~DoorkeeperHalfWords) != 0)
        {
            throw new InvalidOperationException("sketch masks exceed the allocated memory");
        }
        if (_size >= SampleSize)
        {
            throw new InvalidOperationException($"sketch size {_size} reached the sample size {SampleSize} without a reset");
        }
    }
}
