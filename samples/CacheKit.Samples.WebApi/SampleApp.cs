using System.Buffers;
using System.Globalization;
using CacheKit.OffHeap;

namespace CacheKit.Samples.WebApi;

/// <summary>Builds the sample's web application (the tests start it on a free port of 127.0.0.1).</summary>
public static class SampleApp
{
    /// <summary>Creates the app: settings from appsettings.json, then environment, then <paramref name="args"/>.</summary>
    public static WebApplication Build(string[] args)
    {
        WebApplicationBuilder builder = WebApplication.CreateSlimBuilder(args);
        builder.WebHost.UseKestrel();

        builder.Services.AddOffHeapCache(builder.Configuration.GetSection("OffHeapCache"));
        var catalogSettings = new CatalogSettings();
        builder.Configuration.GetSection("Catalog").Bind(catalogSettings);
        builder.Services.AddSingleton(new CatalogDatabase(catalogSettings));
        builder.Services.AddSingleton<MetricsText>();

        WebApplication app = builder.Build();
        app.Services.GetRequiredService<MetricsText>();   // listen from the start

        // The product as JSON, from the cache; on a miss one request per key reads SQLite (single flight).
        app.MapGet("/products/{id:int}", async (int id, HttpContext http, OffHeapCache cache, CatalogDatabase catalog, CancellationToken cancel) =>
        {
            byte[] key = ProductKey(id);
            var body = new ArrayBufferWriter<byte>();
            bool hit;
            try
            {
                hit = await cache.GetOrAddAsync(key, (catalog, id), static async (_, state, value, token) =>
                {
                    if (!await state.catalog.WriteProductJsonAsync(state.id, value, token))
                    {
                        throw new KeyNotFoundException();   // caches nothing; every waiter sees it
                    }
                }, body, cancellationToken: cancel);
            }
            catch (KeyNotFoundException)
            {
                return Results.NotFound();
            }
            http.Response.Headers["X-Cache"] = hit ? "hit" : "miss";
            return Results.Bytes(body.WrittenMemory, "application/json");
        });

        // Writes go to the database, then drop the cached copy.
        app.MapPut("/products/{id:int}/price/{price}", async (int id, string price, OffHeapCache cache, CatalogDatabase catalog, CancellationToken cancel) =>
        {
            if (!decimal.TryParse(price, NumberStyles.Number, CultureInfo.InvariantCulture, out decimal value) || value < 0)
            {
                return Results.BadRequest($"price must be a non-negative decimal number, got '{price}'.");
            }
            if (!await catalog.UpdatePriceAsync(id, value, cancel))
            {
                return Results.NotFound();
            }
            cache.Remove(ProductKey(id));
            return Results.NoContent();
        });

        app.MapGet("/metrics", (MetricsText metrics) => Results.Text(metrics.Render(), "text/plain; version=0.0.4"));
        app.MapGet("/stats", (OffHeapCache cache, CatalogDatabase catalog) =>
        {
            CacheStatistics s = cache.GetStatistics();
            return Results.Text(string.Create(CultureInfo.InvariantCulture,
                $"{{\"hits\":{s.Hits},\"misses\":{s.Misses},\"entries\":{s.Count},\"nativeBytes\":{s.NativeBytes},\"capacityBytes\":{s.CapacityBytes},\"databaseQueries\":{catalog.Queries}}}"),
                "application/json");
        });
        return app;
    }

    private static byte[] ProductKey(int id) => System.Text.Encoding.UTF8.GetBytes(string.Create(CultureInfo.InvariantCulture, $"product:{id}"));
}
