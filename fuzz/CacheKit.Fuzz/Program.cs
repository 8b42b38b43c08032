using CacheKit.Hardening.Harness;
using SharpFuzz;

// Modes:
//   (no arguments)          AFL++ target: afl-fuzz -i fuzz/corpus -o findings -- dotnet CacheKit.Fuzz.dll
//   --libfuzzer             libFuzzer target (with SharpFuzz's libfuzzer-dotnet driver)
//   --replay PATH...        run files or directories of inputs; prints each failure with its shrunk op list
//   --seed-corpus DIR N     writes N seed inputs (random op lists, every policy and shape) to DIR
if (args.Length > 0 && args[0] == "--replay")
{
    int failures = 0, inputs = 0;
    foreach (string path in args.Skip(1).SelectMany(p => Directory.Exists(p) ? Directory.GetFiles(p) : [p]))
    {
        inputs++;
        byte[] data = File.ReadAllBytes(path);
        Failure? failure = FuzzTarget.Run(data);
        if (failure is not null)
        {
            failures++;
            DiffConfig config = FuzzTarget.ConfigFor(data);
            List<Op> ops = OpGenerator.Decode(data.Length > 2 ? data.AsSpan(2) : [], config);
            (List<Op> shrunk, Failure small) = DifferentialRunner.Shrink(config, ops, failure);
            Console.WriteLine($"{path}: {config}: {failure}\n  shrunk to {shrunk.Count} ops ({small}): {Op.Format(shrunk)}");
        }
    }
    Console.WriteLine($"{inputs} inputs, {failures} failures, {DifferentialRunner.OperationsRun} operations");
    return failures == 0 ? 0 : 1;
}

if (args.Length > 0 && args[0] == "--seed-corpus")
{
    string dir = args[1];
    int count = int.Parse(args[2], System.Globalization.CultureInfo.InvariantCulture);
    Directory.CreateDirectory(dir);
    var rng = new Random(2026);
    for (int i = 0; i < count; i++)
    {
        var data = new byte[2 + (4 * (8 + rng.Next(120)))];
        rng.NextBytes(data);
        data[0] = (byte)(i % FuzzTarget.Policies.Length);
        data[1] = (byte)(i / FuzzTarget.Policies.Length % 16);
        File.WriteAllBytes(Path.Combine(dir, $"seed-{i:D3}.bin"), data);
    }
    return 0;
}

Action<ReadOnlySpan<byte>> target = static data =>
{
    Failure? failure = FuzzTarget.Run(data);
    if (failure is not null)
    {
        throw new InvalidOperationException($"cache and model disagree: {FuzzTarget.ConfigFor(data)}: {failure}");
    }
};

if (args.Length > 0 && args[0] == "--libfuzzer")
{
    Fuzzer.LibFuzzer.Run(span => target(span));
}
else
{
    Fuzzer.OutOfProcess.Run(stream =>
    {
        using var memory = new MemoryStream();
        stream.CopyTo(memory);
        target(memory.ToArray());
    });
}
return 0;
