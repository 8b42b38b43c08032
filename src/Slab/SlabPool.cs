using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace CacheKit.Slab;

/// <summary>
/// Owns a byte budget and every native byte counted against it: slab pages (cut into chunks by
/// <see cref="SlabArena"/>s) and raw blocks for other native structures. Thread-safe.
/// </summary>
/// <remarks>
/// <para><b>Budget.</b> <see cref="OwnedBytes"/> = pages allocated * <see cref="PageSize"/> + raw block bytes,
/// and it never exceeds <see cref="BudgetBytes"/>: every allocation reserves its bytes first, under the
/// pool's lock, and only then asks the system (undoing the reservation if the system refuses). The
/// bookkeeping (page table, per-page bitmaps, counters) lives in managed arrays, reported separately as
/// <see cref="SlabStatistics.ManagedBookkeepingBytes"/>.</para>
/// <para><b>Pages are never returned to the system before <see cref="Dispose"/>.</b> A page emptied by an
/// arena goes back to the pool's free list and is re-cut for whatever class needs it next, so a pointer
/// into a page stays readable (though its bytes may change) until the pool is disposed.</para>
/// <para><b>Concurrency notes.</b> Page acquisition and release, blocks, arena creation, statistics and
/// disposal take the pool's lock. While an arena holds a page, that page's state (class, free list,
/// bitmap) is touched only by the arena's single owner; the lock taken on acquire and release orders
/// those writes between successive owners. <see cref="SlabArena.GetPointer"/> reads only the page table,
/// whose entry for a page is published (volatile write) before any handle into the page exists and is
/// never changed again before Dispose.</para>
/// </remarks>
public sealed unsafe class SlabPool : IDisposable
{
    /// <summary>Alignment of every page and block: one cache line.</summary>
    public const int Alignment = 64;

    internal const int None = -1;

    private readonly object _gate = new();
    private readonly long _budgetBytes;
    private readonly int _pageSize;
    private readonly int _maxPages;
    private readonly int _bitmapWords;

    // ---- Page table and per-page state, indexed by page id in [0, _maxPages). ----
    // PageBase[p] != 0 exactly for p < _pageCount; written once (under _gate) before page p is first
    // handed to an arena, zeroed only by Dispose. 64-byte aligned.
    internal readonly nint[] PageBase;

    // The rest of a page's state, one struct per page (one cache line to touch on the hot path). Written by
    // the pool (under _gate) while the page is free, and by the owning arena (single owner) while it holds it.
    internal readonly PageState[] Pages;

    // Free pages: _freeStack[0.._freeCount) hold distinct ids of allocated pages that no arena holds.
    private readonly int[] _freeStack;
    private int _freeCount;

    // Pages allocated from the system: ids [0, _pageCount).
    private int _pageCount;

    // Invariant: _ownedBytes == _pageCount * _pageSize + _blockBytes <= _budgetBytes.
    private long _ownedBytes;
    private long _blockBytes;

    // Raw blocks handed out: pointer -> length. Sum of lengths == _blockBytes.
    private readonly Dictionary<nint, nuint> _blocks = [];

    private readonly List<SlabArena> _arenas = [];
    private volatile bool _disposed;

    /// <summary>
    /// Fault-injection hook for tests: when set, asked before every native allocation (a page or a block)
    /// with its size; false makes that allocation fail as the system allocator does, with
    /// <see cref="OutOfMemoryException"/>. Null by default: one static read per page or block allocation,
    /// nothing on the chunk paths.
    /// </summary>
    internal static volatile Func<nuint, bool>? AllocationHook;

    /// <summary>Creates a pool; allocates no native memory until pages or blocks are asked for.</summary>
    /// <exception cref="ArgumentNullException">options is null.</exception>
    /// <exception cref="ArgumentOutOfRangeException">
    /// BudgetBytes &lt;= 0 or below one page; PageSize not a power of two in [64 KiB, 64 MiB]; SizeClassStepsPerDoubling
    /// not 2, 4 or 8 (when SizeClasses is null).
    /// </exception>
    /// <exception cref="ArgumentException">SizeClasses breaks a rule of <see cref="SizeClassTable.Create(IReadOnlyList{int}, int)"/>.</exception>
    public SlabPool(SlabOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        SizeClassTable.ValidatePageSize(options.PageSize, nameof(options.PageSize));
        if (options.BudgetBytes < options.PageSize)
        {
            throw new ArgumentOutOfRangeException(nameof(options.BudgetBytes), options.BudgetBytes,
                $"BudgetBytes must be at least one page ({options.PageSize} bytes, the PageSize).");
        }

        PoisonFreedMemory = options.PoisonFreedMemory;
        _budgetBytes = options.BudgetBytes;
        _pageSize = options.PageSize;
        Classes = options.SizeClasses is null
            ? SizeClassTable.CreateDefault(_pageSize, options.SizeClassStepsPerDoubling, nameof(options.SizeClassStepsPerDoubling))
            : SizeClassTable.Create(options.SizeClasses, _pageSize, nameof(options.SizeClasses));
        _maxPages = (int)Math.Min(_budgetBytes / _pageSize, SlabHandle.MaxPageId + 1L);
        MaxChunksPerPage = _pageSize / Classes.MinChunkSize;
        _bitmapWords = (MaxChunksPerPage + 63) / 64;

        PageBase = new nint[_maxPages];
        Pages = new PageState[_maxPages];
        _freeStack = new int[_maxPages];
        for (int p = 0; p < _maxPages; p++)
        {
            Pages[p] = PageState.Unowned;
        }
    }

    /// <summary>Finalizer: returns the native memory if the pool was never disposed.</summary>
    ~SlabPool()
    {
        DisposeCore();
    }

    /// <summary>The cap on native bytes owned.</summary>
    public long BudgetBytes => _budgetBytes;

    /// <summary>Native bytes currently allocated from the system; never above <see cref="BudgetBytes"/>.</summary>
    public long OwnedBytes => Volatile.Read(ref _ownedBytes);

    /// <summary>Page size in bytes.</summary>
    public int PageSize => _pageSize;

    /// <summary>The size classes.</summary>
    public SizeClassTable Classes { get; }

    /// <summary>Most pages this pool can ever hold: min(BudgetBytes / PageSize, the handle's page-id range).</summary>
    public int MaxPages => _maxPages;

    /// <summary>Most chunks a page can hold (PageSize / smallest class): the span size for <see cref="SlabArena.GetLiveChunks(int, Span{SlabHandle})"/>.</summary>
    public int MaxChunksPerPage { get; }

    internal bool IsDisposed => _disposed;

    /// <summary>Whether freed chunks and recycled pages are poisoned (<see cref="SlabOptions.PoisonFreedMemory"/>).</summary>
    internal bool PoisonFreedMemory { get; }

    internal int BitmapWords => _bitmapWords;

    /// <summary>
    /// Takes a zeroed, 64-byte-aligned native block of <paramref name="bytes"/> bytes from the budget, for native
    /// structures outside the slab (the engine's index). Returns false, allocating nothing, if it would take
    /// <see cref="OwnedBytes"/> above <see cref="BudgetBytes"/>.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">bytes is 0.</exception>
    /// <exception cref="ObjectDisposedException">The pool was disposed.</exception>
    public bool TryAllocateBlock(nuint bytes, out NativeBlock block)
    {
        if (bytes == 0)
        {
            throw new ArgumentOutOfRangeException(nameof(bytes), bytes, "bytes must be at least 1.");
        }

        using (UninterruptibleLock.Enter(_gate))
        {
            ThrowIfDisposed();
            if ((ulong)bytes > (ulong)(_budgetBytes - _ownedBytes))
            {
                block = default;
                return false;
            }

            // Reserve first, then allocate; undo the reservation if the system refuses.
            _ownedBytes += (long)bytes;
            _blockBytes += (long)bytes;
            void* p = null;
            try
            {
                p = AllocateNative(bytes);
                // SAFETY: p was just allocated with exactly `bytes` bytes.
                NativeMemory.Clear(p, bytes);
                _blocks.Add((nint)p, bytes);
            }
            catch
            {
                NativeMemory.AlignedFree(p);
                _ownedBytes -= (long)bytes;
                _blockBytes -= (long)bytes;
                throw;
            }

            block = new NativeBlock(p, bytes);
            return true;
        }
    }

    /// <summary>Returns a block taken with <see cref="TryAllocateBlock"/> to the system and its bytes to the budget.</summary>
    /// <exception cref="ArgumentException">The block is not an outstanding block of this pool (freed twice, foreign, or altered).</exception>
    /// <exception cref="ObjectDisposedException">The pool was disposed (which already freed every block).</exception>
    public void FreeBlock(NativeBlock block)
    {
        using (UninterruptibleLock.Enter(_gate))
        {
            ThrowIfDisposed();
            if (!_blocks.TryGetValue((nint)block.Pointer, out nuint length) || length != block.Length)
            {
                throw new ArgumentException(
                    $"The block at 0x{(nint)block.Pointer:X} ({block.Length} bytes) is not an outstanding block of this pool: freed twice, never handed out, or its length changed.",
                    nameof(block));
            }

            _blocks.Remove((nint)block.Pointer);
            // SAFETY: the pointer came from AlignedAlloc in TryAllocateBlock and was outstanding until the Remove above.
            NativeMemory.AlignedFree(block.Pointer);
            _ownedBytes -= (long)length;
            _blockBytes -= (long)length;
        }
    }

    /// <summary>Creates an arena (one per shard): a single-owner allocator of chunks from this pool's pages.</summary>
    /// <exception cref="ObjectDisposedException">The pool was disposed.</exception>
    public SlabArena CreateArena()
    {
        using (UninterruptibleLock.Enter(_gate))
        {
            ThrowIfDisposed();
            var arena = new SlabArena(this, _arenas.Count);
            _arenas.Add(arena);
            return arena;
        }
    }

    /// <summary>A snapshot of the accounting (see <see cref="SlabStatistics"/>).</summary>
    /// <exception cref="ObjectDisposedException">The pool was disposed.</exception>
    public SlabStatistics GetStatistics()
    {
        using (UninterruptibleLock.Enter(_gate))
        {
            ThrowIfDisposed();
            int count = Classes.Count;
            var pages = new int[count];
            var live = new long[count];
            var allocations = new long[count];
            var handedOutTotal = new long[count];
            var requestedTotal = new long[count];
            long managed = ManagedBookkeepingBytesUnsynchronized();
            foreach (SlabArena arena in _arenas)
            {
                arena.AddStatistics(pages, live, allocations, handedOutTotal, requestedTotal);
                managed += arena.FootprintBytes;
            }

            var classes = new SlabClassStatistics[count];
            for (int c = 0; c < count; c++)
            {
                classes[c] = new SlabClassStatistics(c, Classes[c], pages[c], live[c], live[c] * Classes[c],
                    allocations[c], handedOutTotal[c], requestedTotal[c]);
            }

            return new SlabStatistics(_budgetBytes, _ownedBytes, _blockBytes, _pageSize, _pageCount, _freeCount, managed, classes);
        }
    }

    /// <summary>Frees every page and block. A second call does nothing; any later use throws <see cref="ObjectDisposedException"/>.</summary>
    public void Dispose()
    {
        DisposeCore();
        GC.SuppressFinalize(this);
    }

    private void DisposeCore()
    {
        using (UninterruptibleLock.Enter(_gate))
        {
            if (_disposed)
            {
                return;
            }

            _disposed = true;
            for (int p = 0; p < _pageCount; p++)
            {
                // SAFETY: PageBase[p] for p < _pageCount came from AlignedAlloc and was never freed before.
                NativeMemory.AlignedFree((void*)PageBase[p]);
                PageBase[p] = 0;
            }

            foreach (nint block in _blocks.Keys)
            {
                // SAFETY: every key is an outstanding AlignedAlloc pointer (removed from the map when freed).
                NativeMemory.AlignedFree((void*)block);
            }

            _blocks.Clear();
            _pageCount = 0;
            _freeCount = 0;
            _blockBytes = 0;
            Volatile.Write(ref _ownedBytes, 0);
        }
    }

    /// <summary>
    /// Hands a page to arena <paramref name="arenaId"/>, cut to <paramref name="classIndex"/>: a free page of the
    /// pool, else a new one from the system if the budget allows; false if neither.
    /// </summary>
    internal bool TryAcquirePage(int arenaId, int classIndex, out int pageId)
    {
        using (UninterruptibleLock.Enter(_gate))
        {
            ThrowIfDisposed();
            int page;
            if (_freeCount > 0)
            {
                page = _freeStack[--_freeCount];
            }
            else if (_pageCount < _maxPages && _budgetBytes - _ownedBytes >= _pageSize)
            {
                page = _pageCount;
                // Reserve first, then allocate; undo the reservation if either allocation fails.
                _ownedBytes += _pageSize;
                void* memory = null;
                try
                {
                    Pages[page].Bitmap ??= new ulong[_bitmapWords];
                    memory = AllocateNative((nuint)_pageSize);
                }
                catch
                {
                    _ownedBytes -= _pageSize;
                    throw;
                }

                Debug.Assert(((nint)memory & (Alignment - 1)) == 0, "AlignedAlloc returned a misaligned page");
                // Publish the base before any handle into the page can exist (GetPointer reads it lock-free).
                Volatile.Write(ref PageBase[page], (nint)memory);
                _pageCount = page + 1;
            }
            else
            {
                pageId = None;
                return false;
            }

            Debug.Assert(Pages[page].Owner == None && Pages[page].Live == 0, "a free page must be unowned and empty");
            Pages[page].Owner = arenaId;
            Pages[page].Class = classIndex;
            Pages[page].Live = 0;
            Pages[page].Bump = 0;
            Pages[page].FreeHead = 0;
            Pages[page].Prev = None;
            Pages[page].Next = None;
            Pages[page].List = None;
            pageId = page;
            return true;
        }
    }

    /// <summary>Takes back an empty page from its arena; it can then be cut for any class by any arena.</summary>
    internal void ReleasePage(int pageId)
    {
        using (UninterruptibleLock.Enter(_gate))
        {
            ThrowIfDisposed();
            Debug.Assert(Pages[pageId].Live == 0, "only an empty page goes back to the pool");
            Debug.Assert(Array.TrueForAll(Pages[pageId].Bitmap!, w => w == 0), "an empty page's bitmap must be clear");
            Pages[pageId].Owner = None;
            Pages[pageId].Class = None;
            Pages[pageId].List = None;
            Pages[pageId].Prev = None;
            Pages[pageId].Next = None;
            _freeStack[_freeCount++] = pageId;
        }
    }

    /// <summary>The one place native memory is asked of the system (so <see cref="AllocationHook"/> sees every request).</summary>
    private static void* AllocateNative(nuint bytes)
    {
        Func<nuint, bool>? hook = AllocationHook;
        if (hook is not null && !hook(bytes))
        {
            throw new OutOfMemoryException($"Native allocation of {bytes} bytes refused by SlabPool.AllocationHook (fault injection).");
        }

        return NativeMemory.AlignedAlloc(bytes, Alignment);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal void ThrowIfDisposed()
    {
        if (_disposed)
        {
            ThrowHelper.ThrowObjectDisposed();
        }
    }

    private long ManagedBookkeepingBytesUnsynchronized()
    {
        long perPage = sizeof(nint) + Unsafe.SizeOf<PageState>() + sizeof(int); // page table, state, free stack
        // Bitmaps exist for the allocated pages [0, _pageCount) and, after a failed native allocation, for page
        // _pageCount too (TryAcquirePage creates it before asking the system and keeps it for the next try).
        long bitmaps = 0;
        int withBitmap = Math.Min(_pageCount + 1, _maxPages);
        for (int p = 0; p < withBitmap; p++)
        {
            bitmaps += (long)(Pages[p].Bitmap?.Length ?? 0) * sizeof(ulong);
        }

        return (perPage * _maxPages) + bitmaps + Classes.FootprintBytes;
    }

    /// <summary>
    /// Checks every invariant of the pool and its arenas; throws <see cref="InvalidOperationException"/> naming the
    /// first one broken. Compiled in every configuration (tests call it after every step, Release included);
    /// call it only while no arena is working.
    /// </summary>
    internal void ValidateInvariants()
    {
        using (UninterruptibleLock.Enter(_gate))
        {
            if (_disposed)
            {
                Check(_ownedBytes == 0 && _blockBytes == 0 && _blocks.Count == 0 && _pageCount == 0, "a disposed pool owns nothing");
                return;
            }

            long blockSum = 0;
            foreach (nuint length in _blocks.Values)
            {
                blockSum += (long)length;
            }

            Check(blockSum == _blockBytes, "block bytes equal the sum of outstanding blocks");
            Check(_ownedBytes == ((long)_pageCount * _pageSize) + _blockBytes, "owned bytes = pages * page size + block bytes");
            Check(_ownedBytes <= _budgetBytes, "owned bytes never exceed the budget");
            Check(_pageCount <= _maxPages && _freeCount <= _pageCount, "page counts within range");

            var seenFree = new bool[_pageCount];
            for (int i = 0; i < _freeCount; i++)
            {
                int p = _freeStack[i];
                Check((uint)p < (uint)_pageCount && !seenFree[p], "free stack holds distinct allocated pages");
                seenFree[p] = true;
                Check(Pages[p].Owner == None && Pages[p].Class == None && Pages[p].Live == 0 && Pages[p].List == None, "a free page is unowned, uncut and empty");
                Check(Array.TrueForAll(Pages[p].Bitmap!, w => w == 0), "a free page's bitmap is clear");
            }

            var pagesPerArena = new int[_arenas.Count];
            for (int p = 0; p < _maxPages; p++)
            {
                if (p >= _pageCount)
                {
                    Check(PageBase[p] == 0 && Pages[p].Owner == None, "pages beyond the allocated count are absent");
                    continue;
                }

                Check(PageBase[p] != 0 && (PageBase[p] & (Alignment - 1)) == 0, "an allocated page is 64-byte aligned");
                Check(Pages[p].Bitmap is { } bits && bits.Length == _bitmapWords, "an allocated page has a bitmap");
                if (Pages[p].Owner == None)
                {
                    Check(seenFree[p], "an unowned page is on the free stack");
                }
                else
                {
                    Check((uint)Pages[p].Owner < (uint)_arenas.Count && !seenFree[p], "an owned page belongs to one arena and is not free");
                    pagesPerArena[Pages[p].Owner]++;
                }
            }

            for (int a = 0; a < _arenas.Count; a++)
            {
                _arenas[a].ValidateInvariants(pagesPerArena[a]);
            }
        }
    }

    internal static void Check(bool condition, string invariant)
    {
        if (!condition)
        {
            throw new InvalidOperationException("Slab invariant broken: " + invariant);
        }
    }
}

/// <summary>The state of one page (see <see cref="SlabPool.Pages"/> for who may write it when).</summary>
internal struct PageState
{
    /// <summary>Arena id, or -1 while the page is free in the pool.</summary>
    public int Owner;

    /// <summary>Size class the page is cut to, or -1 while free.</summary>
    public int Class;

    /// <summary>Chunks handed out; equals the number of set bits in <see cref="Bitmap"/>.</summary>
    public int Live;

    /// <summary>Chunks [0, Bump) have been cut; the rest are untouched. Bump &lt;= capacity of the class.</summary>
    public int Bump;

    /// <summary>1 + index of the first chunk of the page's free list; 0 = empty.</summary>
    public int FreeHead;

    /// <summary>Previous page in the owning arena's list, or -1.</summary>
    public int Prev;

    /// <summary>Next page in the owning arena's list, or -1.</summary>
    public int Next;

    /// <summary>Which of the owning arena's lists holds the page, or -1.</summary>
    public int List;

    /// <summary>One bit per chunk slot (PageSize / smallest class bits): set = handed out. All zero while free; null until first allocated.</summary>
    public ulong[]? Bitmap;

    public static PageState Unowned => new() { Owner = -1, Class = -1, Prev = -1, Next = -1, List = -1 };
}
