using System.Numerics;

namespace CacheKit.Policies;

/// <summary>
/// S3-FIFO (Yang et al., SOSP 2023): a small FIFO (10% of capacity) that filters one-hit wonders,
/// a main FIFO with a 2-bit frequency and lazy reinsertion, and a ghost of keys recently evicted
/// from the small queue; a newcomer found in the ghost goes straight to main.
/// </summary>
/// <remarks>
/// <para><b>Structure.</b> Two lists (small, main; head = newest), a saturating counter 0..3 per entry
/// (hits only increment it: one byte written, lock-free, so <see cref="ConcurrentHits"/> is true),
/// and the ghost: a direct-mapped table of 64-bit fingerprints with one slot per expected entry.
/// A ghost slot is overwritten by the next key hashing to it, so ghost entries age out like a
/// random-replacement queue of the main queue's size (the paper's ghost is a FIFO of that size).</para>
/// <para><b>Eviction.</b> While the small queue holds at least 10% of the weight, its tail is
/// examined: accessed since insertion → moved to main (counter reset); otherwise it is the victim and,
/// once the owner removes it, its key enters the ghost. Otherwise the main tail is examined: a
/// non-zero counter is decremented and the entry reinserted at the head; a zero counter is the victim.
/// Each entry is moved at most 4 times per selection, so the work is bounded by 5 x Count.</para>
/// </remarks>
internal sealed class S3FifoPolicy : PolicyBase
{
    private const int Small = 0;
    private const int Main = 1;
    private const double SmallFraction = 0.10;
    private const byte MaxFrequency = 3;

    private readonly byte[] _frequency;
    private readonly ulong[] _hashes;
    private readonly ulong[] _ghost;      // fingerprint per slot, 0 = empty
    private readonly int _ghostMask;
    private readonly ulong _seed;
    private int _victim = -1;             // last victim chosen from the small queue

    public S3FifoPolicy(PolicyOptions options)
        : base(options, listCount: 2)
    {
        _frequency = new byte[MaxHandles];
        _hashes = new ulong[MaxHandles];
        int ghostSlots = (int)BitOperations.RoundUpToPowerOf2((uint)Math.Max(8, Math.Min(Capacity, MaxHandles)));
        _ghost = new ulong[ghostSlots];
        _ghostMask = ghostSlots - 1;
        _seed = HashMix.SeedOf(options.Seed);
    }

    public override string Name => "S3-FIFO";

    public override bool ConcurrentHits => true;

    public override int SelectVictim()
    {
        // S3-FIFO evicts before it inserts: the newcomer (added first by the owner's protocol) is
        // neither counted in the small queue's size nor a candidate, and stays at the head of its queue.
        int newest = PendingNewcomer();
        long newcomerInSmall = newest >= 0 && Lists.ListOf(newest) == Small ? WeightOf(newest) : 0;
        // 10 % of the capacity, or of the weight held when the owner's own bound made it ask for room below the
        // capacity (PolicyBase.ShareCapacity: an engine whose byte budget fills first; a share of its entry bound
        // kept 819 of 1,920 residents in the small queue in a review).
        long smallTarget = Math.Max(1, (long)(ShareCapacity * SmallFraction));
        int victim = -1;
        long limit = 5L * Count + 2;   // long: 5 x Count overflows an int above 429M entries (MaxHandles allows 2^30)
        for (long step = 0; step < limit && victim < 0; step++)
        {
            int small = Lists.Last(Small);
            if (small == newest) small = -1;
            int main = Lists.Last(Main);
            if (main == newest)
            {
                if (Lists.Count(Main) > 1)
                {
                    MoveFirst(Main, main);   // every other main entry was reinserted: pass the newcomer by
                    continue;
                }
                main = -1;
            }
            if (small >= 0 && (ListWeight(Small) - newcomerInSmall >= smallTarget || main < 0))
            {
                if (_frequency[small] > 0)
                {
                    _frequency[small] = 0;
                    MoveFirst(Main, small);
                    continue;
                }
                victim = small;
                break;
            }
            if (main < 0)
            {
                break;   // nothing but the newcomer (or nothing at all)
            }
            if (_frequency[main] > 0)
            {
                _frequency[main]--;
                MoveFirst(Main, main);
                continue;
            }
            victim = main;
        }
        if (newest >= 0 && Lists.ListOf(newest) == Main)
        {
            MoveFirst(Main, newest);
        }
        if (victim < 0)
        {
            // Unreachable unless readers keep raising counters during the sweep (or nothing is tracked).
            int s = Lists.Last(Small), m = Lists.Last(Main);
            victim = s >= 0 && s != newest ? s : m >= 0 && m != newest ? m : (s >= 0 ? s : m);
        }
        _victim = victim >= 0 && Lists.ListOf(victim) == Small ? victim : -1;
        return victim;
    }

    protected override void AddCore(int handle, ulong keyHash)
    {
        _hashes[handle] = keyHash;
        _frequency[handle] = 0;
        ulong fp = Fingerprint(keyHash);
        ref ulong slot = ref _ghost[(int)(fp & (uint)_ghostMask)];
        if (slot == fp)
        {
            slot = 0;
            LinkFirst(Main, handle);
        }
        else
        {
            LinkFirst(Small, handle);
        }
    }

    protected override void HitCore(int handle, ulong keyHash)
    {
        byte f = _frequency[handle];
        if (f < MaxFrequency)
        {
            _frequency[handle] = (byte)(f + 1);
        }
    }

    protected override void RemoveCore(int handle)
    {
        if (handle == _victim && Lists.ListOf(handle) == Small)
        {
            ulong fp = Fingerprint(_hashes[handle]);
            _ghost[(int)(fp & (uint)_ghostMask)] = fp;
        }
        _victim = -1;
        _frequency[handle] = 0;
    }

    protected override void ClearCore()
    {
        Array.Clear(_frequency);
        Array.Clear(_ghost);
        _victim = -1;
    }

    private ulong Fingerprint(ulong keyHash) => HashMix.Mix(keyHash ^ _seed) | 1;
}
