using System.Buffers;
using System.Text;
using Microsoft.Extensions.DependencyInjection;

namespace CacheKit.OffHeap.Extensions.Tests;

public sealed record class Product(int Id, string Name, decimal Price);

public sealed class TypedRegistrationTests
{
    private static readonly SystemTextJsonSerializer<Product> ProductJson = new();

    [Test]
    public void The_default_caches_typed_view_is_injected_with_and_without_a_key_and_writes_the_registered_cache()
    {
        var services = new ServiceCollection();
        services.AddOffHeapCache(s => { s.CapacityBytes = 4 << 20; s.ShardCount = 2; })
            .AddTypedCache<int, Product>(valueSerializer: ProductJson);
        using ServiceProvider provider = services.BuildServiceProvider();

        OffHeapCache<int, Product> products = provider.GetRequiredService<OffHeapCache<int, Product>>();
        Assert.That(provider.GetRequiredKeyedService<OffHeapCache<int, Product>>(OffHeapCacheServiceCollectionExtensions.DefaultCacheName),
            Is.SameAs(products));

        Assert.That(products.Set(7, new Product(7, "lamp", 19.5m)), Is.True);
        Assert.That(products.TryGetValue(7, out Product? back), Is.True);
        Assert.That(back, Is.EqualTo(new Product(7, "lamp", 19.5m)));

        // The view writes the registered byte cache: the same entry, as JSON, under the int's bytes.
        OffHeapCache bytes = provider.GetRequiredService<OffHeapCache>();
        var raw = new ArrayBufferWriter<byte>();
        Assert.That(bytes.TryGet(BitConverter.GetBytes(7), raw), Is.True);
        Assert.That(Encoding.UTF8.GetString(raw.WrittenSpan), Is.EqualTo("""{"Id":7,"Name":"lamp","Price":19.5}"""));
        Assert.That(bytes.ShardCount, Is.EqualTo(2));
    }

    [Test]
    public void A_named_caches_typed_view_is_keyed_only_and_the_container_disposes_the_cache_under_it()
    {
        var services = new ServiceCollection();
        services.AddOffHeapCache("products", s => s.CapacityBytes = 4 << 20).AddTypedCache<string, Product>(valueSerializer: ProductJson);
        services.AddOffHeapCache("names", s => s.CapacityBytes = 4 << 20).AddTypedCache<string, string>();
        OffHeapCache<string, Product> products;
        OffHeapCache<string, string> names;
        using (ServiceProvider provider = services.BuildServiceProvider())
        {
            products = provider.GetRequiredKeyedService<OffHeapCache<string, Product>>("products");
            names = provider.GetRequiredKeyedService<OffHeapCache<string, string>>("names");
            Assert.That(provider.GetService<OffHeapCache<string, Product>>(), Is.Null, "only the default cache's view is registered without a key");

            products.Set("p1", new Product(1, "desk", 120m));
            names.Set("p1", "desk");
            Assert.That(products.TryGetValue("p1", out Product? p) ? p!.Name : null, Is.EqualTo("desk"));
            Assert.That(names.TryGetValue("p1", out string? n) ? n : null, Is.EqualTo("desk"));
            Assert.That(provider.GetRequiredKeyedService<OffHeapCache>("products").Count, Is.EqualTo(1));
            Assert.That(provider.GetRequiredKeyedService<OffHeapCache>("names").Count, Is.EqualTo(1));
        }
        Assert.Throws<ObjectDisposedException>(() => products.TryGetValue("p1", out _));
        Assert.Throws<ObjectDisposedException>(() => names.Set("p2", "chair"));
    }

    [Test]
    public void A_second_typed_view_of_one_cache_is_refused_naming_the_cache_and_the_first_view()
    {
        var services = new ServiceCollection();
        OffHeapCacheBuilder builder = services.AddOffHeapCache("catalog", s => s.CapacityBytes = 4 << 20).AddTypedCache<int, long>();
        var e = Assert.Throws<InvalidOperationException>(() => builder.AddTypedCache<int, Product>(valueSerializer: ProductJson))!;
        Assert.That(e.Message, Does.Contain("'catalog'"));
        Assert.That(e.Message, Does.Contain("OffHeapCache<Int32, Int64>"));

        using ServiceProvider provider = services.BuildServiceProvider();
        Assert.That(provider.GetKeyedService<OffHeapCache<int, Product>>("catalog"), Is.Null, "the refused view was not registered");
        Assert.That(provider.GetRequiredKeyedService<OffHeapCache<int, long>>("catalog").Set(1, 2L), Is.True);
    }

    [Test]
    public void A_type_without_a_built_in_serializer_is_refused_at_registration()
    {
        var services = new ServiceCollection();
        OffHeapCacheBuilder builder = services.AddOffHeapCache(s => s.CapacityBytes = 4 << 20);
        var e = Assert.Throws<ArgumentException>(() => builder.AddTypedCache<int, Product>())!;
        Assert.That(e.Message, Does.Contain("SystemTextJsonSerializer<Product>"));

        // Refused means not registered: a corrected call on the same builder succeeds.
        builder.AddTypedCache<int, Product>(valueSerializer: ProductJson);
        using ServiceProvider provider = services.BuildServiceProvider();
        Assert.That(provider.GetRequiredService<OffHeapCache<int, Product>>().Set(1, new Product(1, "x", 1m)), Is.True);
    }

    [Test]
    public void Generic_type_names_read_as_in_csharp_in_the_refusal()
    {
        var services = new ServiceCollection();
        OffHeapCacheBuilder builder = services.AddOffHeapCache(s => s.CapacityBytes = 4 << 20)
            .AddTypedCache<int?, List<Dictionary<string, int>>[]>(valueSerializer: new SystemTextJsonSerializer<List<Dictionary<string, int>>[]>());
        var e = Assert.Throws<InvalidOperationException>(() => builder.AddTypedCache<int, long>())!;
        Assert.That(e.Message, Does.Contain("OffHeapCache<Nullable<Int32>, List<Dictionary<String, Int32>>[]>"));
    }

    [TestCase(true)]
    [TestCase(false)]
    public void A_typed_view_of_the_cache_the_distributed_cache_serves_is_refused_whichever_is_resolved_first(bool distributedFirst)
    {
        var services = new ServiceCollection();
        if (distributedFirst)
        {
            services.AddOffHeapDistributedCache();   // registered before the cache, as the docs allow
        }
        services.AddOffHeapCache(s => s.CapacityBytes = 4 << 20).AddTypedCache<string, Product>(valueSerializer: ProductJson);
        if (!distributedFirst)
        {
            services.AddOffHeapDistributedCache();
        }
        using ServiceProvider provider = services.BuildServiceProvider();
        var e = Assert.Throws<InvalidOperationException>(() => provider.GetRequiredService<Microsoft.Extensions.Caching.Distributed.IDistributedCache>())!;
        Assert.That(e.Message, Does.Contain("'Default'").And.Contain("OffHeapCache<String, Product>"));
        Assert.Throws<InvalidOperationException>(() => provider.GetRequiredService<OffHeapCache<string, Product>>());
        Assert.Throws<InvalidOperationException>(() => provider.GetRequiredKeyedService<OffHeapCache<string, Product>>("Default"));
    }

    [Test]
    public void The_distributed_cache_and_a_typed_view_on_different_caches_both_work()
    {
        var services = new ServiceCollection();
        services.AddOffHeapCache(s => s.CapacityBytes = 4 << 20).AddTypedCache<string, Product>(valueSerializer: ProductJson);
        services.AddOffHeapCache("distributed", s => s.CapacityBytes = 4 << 20);
        services.AddOffHeapDistributedCache("distributed");
        using ServiceProvider provider = services.BuildServiceProvider();

        var distributed = provider.GetRequiredService<Microsoft.Extensions.Caching.Distributed.IDistributedCache>();
        OffHeapCache<string, Product> products = provider.GetRequiredService<OffHeapCache<string, Product>>();
        distributed.Set("k", [1, 2, 3], new Microsoft.Extensions.Caching.Distributed.DistributedCacheEntryOptions());
        products.Set("k", new Product(1, "desk", 120m));
        Assert.That(distributed.Get("k"), Is.EqualTo(new byte[] { 1, 2, 3 }));
        Assert.That(products.TryGetValue("k", out Product? p) ? p!.Name : null, Is.EqualTo("desk"));
    }

    [Test]
    public void A_serializer_factory_runs_once_at_the_first_resolve_with_the_container()
    {
        var services = new ServiceCollection();
        services.AddSingleton(new System.Text.Json.JsonSerializerOptions { PropertyNamingPolicy = System.Text.Json.JsonNamingPolicy.CamelCase });
        int calls = 0;
        services.AddOffHeapCache("products", s => s.CapacityBytes = 4 << 20).AddTypedCache<int, Product>(sp =>
        {
            calls++;
            return new SystemTextJsonSerializer<Product>(sp.GetRequiredService<System.Text.Json.JsonSerializerOptions>());
        });
        using ServiceProvider provider = services.BuildServiceProvider();
        Assert.That(calls, Is.Zero, "not at registration");
        var products = provider.GetRequiredKeyedService<OffHeapCache<int, Product>>("products");
        Assert.That(provider.GetRequiredKeyedService<OffHeapCache<int, Product>>("products"), Is.SameAs(products));
        Assert.That(calls, Is.EqualTo(1));

        products.Set(3, new Product(3, "pen", 2m));
        var raw = new ArrayBufferWriter<byte>();
        Assert.That(provider.GetRequiredKeyedService<OffHeapCache>("products").TryGet(BitConverter.GetBytes(3), raw), Is.True);
        Assert.That(Encoding.UTF8.GetString(raw.WrittenSpan), Is.EqualTo("""{"id":3,"name":"pen","price":2}"""), "the container's options");
    }

    [Test]
    public void A_factory_that_returns_null_fails_the_resolve_naming_the_view_and_a_key_type_without_a_serializer_fails_at_registration()
    {
        var services = new ServiceCollection();
        services.AddOffHeapCache(s => s.CapacityBytes = 4 << 20).AddTypedCache<int, Product>(_ => null!);
        using ServiceProvider provider = services.BuildServiceProvider();
        var e = Assert.Throws<InvalidOperationException>(() => provider.GetRequiredService<OffHeapCache<int, Product>>())!;
        Assert.That(e.Message, Does.Contain("value serializer factory").And.Contain("OffHeapCache<Int32, Product>"));

        OffHeapCacheBuilder other = new ServiceCollection().AddOffHeapCache(s => s.CapacityBytes = 4 << 20);
        Assert.Throws<ArgumentException>(() => other.AddTypedCache<Product, Product>(_ => ProductJson));
        Assert.Throws<ArgumentNullException>(() => other.AddTypedCache<int, Product>((Func<IServiceProvider, ICacheSerializer<Product>>)null!));
        other.AddTypedCache<Product, Product>(_ => ProductJson, _ => ProductJson);   // both given: accepted
    }

    [Test]
    public void An_earlier_distributed_registration_over_the_viewed_cache_is_refused_too()
    {
        // Two AddOffHeapDistributedCache calls: IDistributedCache resolves the last, but GetServices builds each one.
        var services = new ServiceCollection();
        services.AddOffHeapCache(s => s.CapacityBytes = 4 << 20).AddTypedCache<string, Product>(valueSerializer: ProductJson);
        services.AddOffHeapCache("distributed", s => s.CapacityBytes = 4 << 20);
        services.AddOffHeapDistributedCache();
        services.AddOffHeapDistributedCache("distributed");
        using ServiceProvider provider = services.BuildServiceProvider();
        Assert.That(provider.GetRequiredService<Microsoft.Extensions.Caching.Distributed.IDistributedCache>(), Is.Not.Null, "the last one serves another cache");
        Assert.Throws<InvalidOperationException>(() => provider.GetServices<OffHeapDistributedCache>().ToList());
        Assert.Throws<InvalidOperationException>(() => provider.GetRequiredService<OffHeapCache<string, Product>>());
    }
}
