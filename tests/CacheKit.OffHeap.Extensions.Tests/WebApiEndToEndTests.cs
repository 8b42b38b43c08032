using System.Net;
using System.Text.Json;
using CacheKit.Samples.WebApi;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;

namespace CacheKit.OffHeap.Extensions.Tests;

/// <summary>The ASP.NET Core sample on real Kestrel (127.0.0.1, a free port) over a real SQLite file, driven over HTTP.</summary>
[NonParallelizable]
public sealed class WebApiEndToEndTests
{
    private string _directory = null!;
    private WebApplication _app = null!;
    private HttpClient _http = null!;

    [OneTimeSetUp]
    public async Task Start()
    {
        _directory = Directory.CreateTempSubdirectory("cachekit-webapi-").FullName;
        _app = SampleApp.Build(
        [
            "--urls=http://127.0.0.1:0",
            $"--Catalog:DatabasePath={Path.Combine(_directory, "catalog.db")}",
            "--Catalog:Products=500",
            "--Catalog:DelayMilliseconds=5",
            "--Logging:LogLevel:Default=Warning",
        ]);
        await _app.StartAsync();
        string address = _app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.Single();
        Assert.That(address, Does.StartWith("http://127.0.0.1:"));
        _http = new HttpClient { BaseAddress = new Uri(address) };
    }

    [OneTimeTearDown]
    public async Task Stop()
    {
        _http.Dispose();
        await _app.StopAsync();
        await _app.DisposeAsync();
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        Directory.Delete(_directory, recursive: true);
    }

    [Test]
    public async Task A_product_is_read_from_SQLite_once_then_from_the_cache()
    {
        HttpResponseMessage first = await _http.GetAsync("/products/42");
        HttpResponseMessage second = await _http.GetAsync("/products/42");
        Assert.That(first.StatusCode, Is.EqualTo(HttpStatusCode.OK));
        Assert.That(first.Headers.GetValues("X-Cache").Single(), Is.EqualTo("miss"));
        Assert.That(second.Headers.GetValues("X-Cache").Single(), Is.EqualTo("hit"));
        string body = await first.Content.ReadAsStringAsync();
        Assert.That(await second.Content.ReadAsStringAsync(), Is.EqualTo(body));
        using JsonDocument product = JsonDocument.Parse(body);
        Assert.That(product.RootElement.GetProperty("id").GetInt32(), Is.EqualTo(42));
        Assert.That(product.RootElement.GetProperty("name").GetString(), Is.EqualTo("Product 42"));
        Assert.That(first.Content.Headers.ContentType!.MediaType, Is.EqualTo("application/json"));
    }

    [Test]
    public async Task Concurrent_misses_of_one_key_reach_the_database_once()
    {
        long before = await DatabaseQueries();
        HttpResponseMessage[] responses = await Task.WhenAll(Enumerable.Range(0, 16).Select(_ => _http.GetAsync("/products/77")));
        Assert.That(responses.All(r => r.StatusCode == HttpStatusCode.OK));
        Assert.That(await DatabaseQueries() - before, Is.EqualTo(1));
    }

    [Test]
    public async Task An_update_invalidates_the_cached_copy()
    {
        await _http.GetAsync("/products/5");
        HttpResponseMessage put = await _http.PutAsync("/products/5/price/123.45", null);
        Assert.That(put.StatusCode, Is.EqualTo(HttpStatusCode.NoContent));
        HttpResponseMessage after = await _http.GetAsync("/products/5");
        Assert.That(after.Headers.GetValues("X-Cache").Single(), Is.EqualTo("miss"));
        using JsonDocument product = JsonDocument.Parse(await after.Content.ReadAsStringAsync());
        Assert.That(product.RootElement.GetProperty("price").GetDecimal(), Is.EqualTo(123.45m));
    }

    [Test]
    public async Task Unknown_products_and_bad_prices_are_refused()
    {
        Assert.That((await _http.GetAsync("/products/100000")).StatusCode, Is.EqualTo(HttpStatusCode.NotFound));
        Assert.That((await _http.GetAsync("/products/100000")).StatusCode, Is.EqualTo(HttpStatusCode.NotFound), "a miss is not cached as a value");
        Assert.That((await _http.PutAsync("/products/1/price/abc", null)).StatusCode, Is.EqualTo(HttpStatusCode.BadRequest));
        Assert.That((await _http.PutAsync("/products/100000/price/1", null)).StatusCode, Is.EqualTo(HttpStatusCode.NotFound));
    }

    [Test]
    public async Task The_metrics_endpoint_shows_the_meter()
    {
        await _http.GetAsync("/products/9");
        await _http.GetAsync("/products/9");
        string metrics = await _http.GetStringAsync("/metrics");
        Assert.That(metrics, Does.Contain("cachekit_offheap_requests_total{cache_name=\"Default\",result=\"hit\"}"));
        Assert.That(metrics, Does.Contain("cachekit_offheap_capacity_bytes{cache_name=\"Default\"} 67108864"));
        long hits = long.Parse(metrics.Split('\n').Single(l => l.StartsWith("cachekit_offheap_requests_total{cache_name=\"Default\",result=\"hit\"}", StringComparison.Ordinal)).Split(' ')[1],
            System.Globalization.CultureInfo.InvariantCulture);
        Assert.That(hits, Is.GreaterThanOrEqualTo(1));
    }

    private async Task<long> DatabaseQueries()
    {
        using JsonDocument stats = JsonDocument.Parse(await _http.GetStringAsync("/stats"));
        return stats.RootElement.GetProperty("databaseQueries").GetInt64();
    }
}
