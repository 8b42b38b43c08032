namespace CacheKit.Slab;

/// <summary>
/// A monitor lock whose wait a <see cref="Thread.Interrupt"/> cannot break. The pool's lock is taken in the
/// middle of a caller's state change (a shard gives an emptied page back half-way through removing an entry):
/// a <see cref="ThreadInterruptedException"/> escaping there would leave the page held by nobody and the
/// shard's index, policy and counters disagreeing. The interrupt is held back instead and re-armed once the
/// lock is released, so it surfaces at the thread's next blocking wait, as the runtime would deliver it anyway.
/// </summary>
/// <remarks>Use as <c>using (UninterruptibleLock.Enter(gate)) { ... }</c> in place of <c>lock (gate)</c>.</remarks>
internal readonly ref struct UninterruptibleLock
{
    private readonly object _gate;
    private readonly bool _interrupted;

    private UninterruptibleLock(object gate, bool interrupted)
    {
        _gate = gate;
        _interrupted = interrupted;
    }

    /// <summary>Takes <paramref name="gate"/>'s monitor, waiting through any interrupt.</summary>
    public static UninterruptibleLock Enter(object gate)
    {
        bool interrupted = false;
        while (true)
        {
            bool taken = false;
            try
            {
                Monitor.Enter(gate, ref taken);
            }
            catch (ThreadInterruptedException)
            {
                interrupted = true;
            }
            if (taken)
            {
                return new UninterruptibleLock(gate, interrupted);
            }
        }
    }

    /// <summary>Releases the monitor, then re-arms an interrupt that arrived while waiting for it.</summary>
    public void Dispose()
    {
        Monitor.Exit(_gate);
        if (_interrupted)
        {
            Thread.CurrentThread.Interrupt();
        }
    }
}
