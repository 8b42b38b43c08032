using System.Buffers;
using System.Globalization;
using System.Text.Json;
using Microsoft.Data.Sqlite;

namespace CacheKit.Samples.WebApi;

/// <summary>
/// The slow backend: a real SQLite database of products. Each read opens a connection, runs a query and
/// then waits <see cref="CatalogSettings.DelayMilliseconds"/> to stand for a remote database's latency.
/// </summary>
public sealed class CatalogDatabase
{
    private readonly string _connectionString;
    private readonly TimeSpan _delay;
    private long _queries;

    /// <summary>Opens (and on first use creates and fills) the database at <see cref="CatalogSettings.DatabasePath"/>.</summary>
    public CatalogDatabase(CatalogSettings settings)
    {
        ArgumentNullException.ThrowIfNull(settings);
        ArgumentOutOfRangeException.ThrowIfNegative(settings.DelayMilliseconds);
        ArgumentOutOfRangeException.ThrowIfLessThan(settings.Products, 1);
        _connectionString = new SqliteConnectionStringBuilder { DataSource = settings.DatabasePath, Pooling = false }.ToString();
        _delay = TimeSpan.FromMilliseconds(settings.DelayMilliseconds);
        Seed(settings.Products);
    }

    /// <summary>Queries run so far (each one a cache miss that reached the database).</summary>
    public long Queries => Interlocked.Read(ref _queries);

    /// <summary>Writes product <paramref name="id"/> as JSON into <paramref name="destination"/>; false when there is no such product.</summary>
    public async Task<bool> WriteProductJsonAsync(int id, IBufferWriter<byte> destination, CancellationToken cancellationToken)
    {
        Interlocked.Increment(ref _queries);
        await using var connection = new SqliteConnection(_connectionString);
        await connection.OpenAsync(cancellationToken);
        await using SqliteCommand command = connection.CreateCommand();
        command.CommandText = "SELECT id, name, price, description FROM products WHERE id = $id";
        command.Parameters.AddWithValue("$id", id);
        await using SqliteDataReader reader = await command.ExecuteReaderAsync(cancellationToken);
        if (!await reader.ReadAsync(cancellationToken))
        {
            return false;
        }
        await Task.Delay(_delay, cancellationToken);
        using var json = new Utf8JsonWriter(destination);
        json.WriteStartObject();
        json.WriteNumber("id", reader.GetInt32(0));
        json.WriteString("name", reader.GetString(1));
        json.WriteNumber("price", reader.GetDecimal(2));
        json.WriteString("description", reader.GetString(3));
        json.WriteEndObject();
        return true;
    }

    /// <summary>Sets a product's price; false when there is no such product.</summary>
    public async Task<bool> UpdatePriceAsync(int id, decimal price, CancellationToken cancellationToken)
    {
        await using var connection = new SqliteConnection(_connectionString);
        await connection.OpenAsync(cancellationToken);
        await using SqliteCommand command = connection.CreateCommand();
        command.CommandText = "UPDATE products SET price = $price WHERE id = $id";
        command.Parameters.AddWithValue("$id", id);
        command.Parameters.AddWithValue("$price", price);
        return await command.ExecuteNonQueryAsync(cancellationToken) == 1;
    }

    private void Seed(int products)
    {
        using var connection = new SqliteConnection(_connectionString);
        connection.Open();
        using SqliteTransaction transaction = connection.BeginTransaction();
        using (SqliteCommand create = connection.CreateCommand())
        {
            create.Transaction = transaction;
            create.CommandText = "CREATE TABLE IF NOT EXISTS products (id INTEGER PRIMARY KEY, name TEXT NOT NULL, price NUMERIC NOT NULL, description TEXT NOT NULL)";
            create.ExecuteNonQuery();
        }
        using (SqliteCommand count = connection.CreateCommand())
        {
            count.Transaction = transaction;
            count.CommandText = "SELECT COUNT(*) FROM products";
            if (Convert.ToInt64(count.ExecuteScalar(), CultureInfo.InvariantCulture) > 0)
            {
                transaction.Commit();
                return;
            }
        }
        using SqliteCommand insert = connection.CreateCommand();
        insert.Transaction = transaction;
        insert.CommandText = "INSERT INTO products (id, name, price, description) VALUES ($id, $name, $price, $description)";
        SqliteParameter idParameter = insert.Parameters.Add("$id", SqliteType.Integer);
        SqliteParameter nameParameter = insert.Parameters.Add("$name", SqliteType.Text);
        SqliteParameter priceParameter = insert.Parameters.Add("$price", SqliteType.Real);
        SqliteParameter descriptionParameter = insert.Parameters.Add("$description", SqliteType.Text);
        for (int id = 1; id <= products; id++)
        {
            idParameter.Value = id;
            nameParameter.Value = string.Create(CultureInfo.InvariantCulture, $"Product {id}");
            priceParameter.Value = 1 + (id % 100) + 0.99;
            descriptionParameter.Value = string.Create(CultureInfo.InvariantCulture, $"The {id}th product of the catalogue, kept in SQLite.");
            insert.ExecuteNonQuery();
        }
        transaction.Commit();
    }
}

/// <summary>The "Catalog" configuration section.</summary>
public sealed class CatalogSettings
{
    /// <summary>SQLite file; created and filled when missing.</summary>
    public string DatabasePath { get; set; } = "catalog.db";

    /// <summary>Products to create in a new database.</summary>
    public int Products { get; set; } = 10_000;

    /// <summary>Added latency of every read, standing for a remote database.</summary>
    public int DelayMilliseconds { get; set; } = 30;
}
