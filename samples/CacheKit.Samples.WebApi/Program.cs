using CacheKit.Samples.WebApi;

// dotnet run --project samples/CacheKit.Samples.WebApi, then:
//   curl -i http://127.0.0.1:5080/products/42     (X-Cache: miss, then hit)
//   curl http://127.0.0.1:5080/metrics
//   dotnet-counters monitor -n CacheKit.Samples.WebApi --counters CacheKit.OffHeap
SampleApp.Build(args).Run();
