using System.Buffers;
using System.Runtime.InteropServices;
using BenchmarkDotNet.Attributes;
using CacheKit.Slab;

namespace CacheKit.Benchmarks.Slab;

/// <summary>
/// Cost of one allocate + free pair: the slab arena against <see cref="NativeMemory.Alloc(nuint)"/> /
/// <see cref="NativeMemory.Free"/> (baseline) and <see cref="ArrayPool{T}.Shared"/> Rent/Return. Run:
/// <c>dotnet run -c Release --project perf/CacheKit.Benchmarks -- --filter '*SlabAllocateFree*' --job short</c>.
/// </summary>
[MemoryDiagnoser]
public unsafe class SlabAllocateFreePairBenchmarks
{
    private SlabPool _pool = null!;
    private SlabArena _arena = null!;

    /// <summary>Requested bytes per allocation.</summary>
    [Params(100, 1000)]
    public int Size { get; set; }

    /// <summary>Creates the pool (64 MiB budget, 1 MiB pages, default classes) and one arena.</summary>
    [GlobalSetup]
    public void Setup()
    {
        _pool = new SlabPool(new SlabOptions { BudgetBytes = 64L << 20 });
        _arena = _pool.CreateArena();
    }

    /// <summary>Frees the pool.</summary>
    [GlobalCleanup]
    public void Cleanup() => _pool.Dispose();

    /// <summary>Baseline: the system allocator.</summary>
    [Benchmark(Baseline = true)]
    public void NativeMemory_AllocFree()
    {
        void* p = NativeMemory.Alloc((nuint)Size);
        NativeMemory.Free(p);
    }

    /// <summary>The slab arena.</summary>
    [Benchmark]
    public void Slab_AllocateFree()
    {
        _arena.TryAllocate(Size, out SlabHandle h);
        _arena.Free(h);
    }

    /// <summary>The shared managed array pool.</summary>
    [Benchmark]
    public void ArrayPool_RentReturn()
    {
        byte[] a = ArrayPool<byte>.Shared.Rent(Size);
        ArrayPool<byte>.Shared.Return(a);
    }
}

/// <summary>
/// 1,000 allocations then 1,000 frees (reported per operation): the slab arena's free lists and bump cutting
/// against the system allocator (baseline) and the shared array pool (which keeps few arrays per size, so most of
/// these rents allocate on the managed heap).
/// </summary>
[MemoryDiagnoser]
public unsafe class SlabAllocateFreeBatchBenchmarks
{
    private const int Batch = 1000;

    private SlabPool _pool = null!;
    private SlabArena _arena = null!;
    private readonly SlabHandle[] _handles = new SlabHandle[Batch];
    private readonly nint[] _pointers = new nint[Batch];
    private readonly byte[][] _arrays = new byte[Batch][];

    /// <summary>Requested bytes per allocation.</summary>
    [Params(100, 1000)]
    public int Size { get; set; }

    /// <summary>Creates the pool (64 MiB budget, 1 MiB pages, default classes) and one arena.</summary>
    [GlobalSetup]
    public void Setup()
    {
        _pool = new SlabPool(new SlabOptions { BudgetBytes = 64L << 20 });
        _arena = _pool.CreateArena();
    }

    /// <summary>Frees the pool.</summary>
    [GlobalCleanup]
    public void Cleanup() => _pool.Dispose();

    /// <summary>Baseline: 1,000 system allocations, then 1,000 frees.</summary>
    [Benchmark(Baseline = true, OperationsPerInvoke = Batch)]
    public void NativeMemory_Batch()
    {
        for (int i = 0; i < Batch; i++)
        {
            _pointers[i] = (nint)NativeMemory.Alloc((nuint)Size);
        }

        for (int i = 0; i < Batch; i++)
        {
            NativeMemory.Free((void*)_pointers[i]);
        }
    }

    /// <summary>1,000 slab allocations, then 1,000 frees.</summary>
    [Benchmark(OperationsPerInvoke = Batch)]
    public void Slab_Batch()
    {
        for (int i = 0; i < Batch; i++)
        {
            _arena.TryAllocate(Size, out _handles[i]);
        }

        for (int i = 0; i < Batch; i++)
        {
            _arena.Free(_handles[i]);
        }
    }

    /// <summary>1,000 rents, then 1,000 returns.</summary>
    [Benchmark(OperationsPerInvoke = Batch)]
    public void ArrayPool_Batch()
    {
        for (int i = 0; i < Batch; i++)
        {
            _arrays[i] = ArrayPool<byte>.Shared.Rent(Size);
        }

        for (int i = 0; i < Batch; i++)
        {
            ArrayPool<byte>.Shared.Return(_arrays[i]);
        }
    }
}
