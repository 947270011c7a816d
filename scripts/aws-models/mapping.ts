// Which AWS API call creates each Pulumi resource type of our plans, and which Pulumi input feeds
// which member of that call's input. Small and explicit on purpose: a type missing here is reported
// as "not covered", never skipped in silence.
//
// Paths: `a.b` nests, `list[]` walks a list (the n-th `[]` on the left fills the n-th `[]` on the
// right), `list[0]` is a fixed element, `map{}` walks a map's entries as `{ key, value }` (how the
// provider turns `dimensions: { InstanceId: "i-…" }` into `Dimensions: [{ Name, Value }]`).
// Only what the create call sends is mapped; what the provider sends in a second call (tags,
// attributes, routes, retention) is named in `later` and not checked.

export interface Mapping {
  service: string;
  operation: string;
  /** Pulumi input path → API input path. */
  members: Record<string, string>;
  /** API members the provider fills itself (a caller reference, a count): path → a valid value. */
  fixed?: Record<string, unknown>;
  /** Inputs the provider sends through another call, not checked here (said in the output). */
  later?: string[];
}

const m = (service: string, operation: string, members: Record<string, string>, extra: Partial<Mapping> = {}): Mapping => ({ service, operation, members, ...extra });

/** Types that register nothing with AWS or whose create is no API call of its own. */
export const NOT_COVERED: Record<string, string> = {
  "aws:acm/certificateValidation:CertificateValidation": "no AWS call: the provider waits for the certificate to be issued",
  "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup": "no create call: the provider adopts the VPC's default group and revokes its rules",
};

export const MAPPINGS: Record<string, Mapping> = {
  "aws:acm/certificate:Certificate": m("acm", "RequestCertificate", { domainName: "DomainName", validationMethod: "ValidationMethod" }),
  "aws:cloudwatch/dashboard:Dashboard": m("cloudwatch", "PutDashboard", { dashboardName: "DashboardName", dashboardBody: "DashboardBody" }),
  "aws:cloudwatch/logGroup:LogGroup": m("logs", "CreateLogGroup", { name: "logGroupName", kmsKeyId: "kmsKeyId" }, { later: ["retentionInDays"] }),
  "aws:cloudwatch/logMetricFilter:LogMetricFilter": m("logs", "PutMetricFilter", {
    name: "filterName", logGroupName: "logGroupName", pattern: "filterPattern",
    "metricTransformation.name": "metricTransformations[0].metricName",
    "metricTransformation.namespace": "metricTransformations[0].metricNamespace",
    "metricTransformation.value": "metricTransformations[0].metricValue",
    "metricTransformation.defaultValue": "metricTransformations[0].defaultValue",
    "metricTransformation.unit": "metricTransformations[0].unit",
  }),
  "aws:cloudwatch/metricAlarm:MetricAlarm": m("cloudwatch", "PutMetricAlarm", {
    name: "AlarmName", alarmDescription: "AlarmDescription", actionsEnabled: "ActionsEnabled",
    "alarmActions[]": "AlarmActions[]", "okActions[]": "OKActions[]", "insufficientDataActions[]": "InsufficientDataActions[]",
    metricName: "MetricName", namespace: "Namespace", statistic: "Statistic", extendedStatistic: "ExtendedStatistic",
    "dimensions{}.key": "Dimensions[].Name", "dimensions{}.value": "Dimensions[].Value",
    period: "Period", unit: "Unit", evaluationPeriods: "EvaluationPeriods", datapointsToAlarm: "DatapointsToAlarm",
    threshold: "Threshold", comparisonOperator: "ComparisonOperator", treatMissingData: "TreatMissingData",
    "metricQueries[].id": "Metrics[].Id", "metricQueries[].expression": "Metrics[].Expression",
    "metricQueries[].label": "Metrics[].Label", "metricQueries[].returnData": "Metrics[].ReturnData",
    "metricQueries[].period": "Metrics[].Period",
    "metricQueries[].metric.metricName": "Metrics[].MetricStat.Metric.MetricName",
    "metricQueries[].metric.namespace": "Metrics[].MetricStat.Metric.Namespace",
    "metricQueries[].metric.dimensions{}.key": "Metrics[].MetricStat.Metric.Dimensions[].Name",
    "metricQueries[].metric.dimensions{}.value": "Metrics[].MetricStat.Metric.Dimensions[].Value",
    "metricQueries[].metric.period": "Metrics[].MetricStat.Period",
    "metricQueries[].metric.stat": "Metrics[].MetricStat.Stat",
    "metricQueries[].metric.unit": "Metrics[].MetricStat.Unit",
  }),
  "aws:ebs/volume:Volume": m("ec2", "CreateVolume", { availabilityZone: "AvailabilityZone", encrypted: "Encrypted", kmsKeyId: "KmsKeyId", size: "Size", type: "VolumeType", iops: "Iops", throughput: "Throughput" }),
  "aws:ec2/eip:Eip": m("ec2", "AllocateAddress", { domain: "Domain" }, { later: ["instance"] }),
  "aws:ec2/flowLog:FlowLog": m("ec2", "CreateFlowLogs", {
    vpcId: "ResourceIds[0]", trafficType: "TrafficType", logDestinationType: "LogDestinationType",
    logDestination: "LogDestination", iamRoleArn: "DeliverLogsPermissionArn", logFormat: "LogFormat", maxAggregationInterval: "MaxAggregationInterval",
  }, { fixed: { ResourceType: "VPC" } }),
  "aws:ec2/instance:Instance": m("ec2", "RunInstances", {
    ami: "ImageId", instanceType: "InstanceType", subnetId: "SubnetId", "vpcSecurityGroupIds[]": "SecurityGroupIds[]",
    availabilityZone: "Placement.AvailabilityZone", iamInstanceProfile: "IamInstanceProfile.Name",
    disableApiTermination: "DisableApiTermination", monitoring: "Monitoring.Enabled",
    userData: "UserData", userDataBase64: "UserData",
    "metadataOptions.httpEndpoint": "MetadataOptions.HttpEndpoint", "metadataOptions.httpTokens": "MetadataOptions.HttpTokens",
    "metadataOptions.httpPutResponseHopLimit": "MetadataOptions.HttpPutResponseHopLimit",
    "metadataOptions.instanceMetadataTags": "MetadataOptions.InstanceMetadataTags",
    "rootBlockDevice.deleteOnTermination": "BlockDeviceMappings[0].Ebs.DeleteOnTermination",
    "rootBlockDevice.encrypted": "BlockDeviceMappings[0].Ebs.Encrypted",
    "rootBlockDevice.kmsKeyId": "BlockDeviceMappings[0].Ebs.KmsKeyId",
    "rootBlockDevice.volumeSize": "BlockDeviceMappings[0].Ebs.VolumeSize",
    "rootBlockDevice.volumeType": "BlockDeviceMappings[0].Ebs.VolumeType",
  }, { fixed: { MinCount: 1, MaxCount: 1 } }),
  "aws:ec2/internetGateway:InternetGateway": m("ec2", "AttachInternetGateway", { vpcId: "VpcId" }, { fixed: { InternetGatewayId: "igw-0" } }),
  "aws:ec2/natGateway:NatGateway": m("ec2", "CreateNatGateway", { allocationId: "AllocationId", subnetId: "SubnetId", connectivityType: "ConnectivityType" }),
  "aws:ec2/routeTable:RouteTable": m("ec2", "CreateRouteTable", { vpcId: "VpcId" }, { later: ["routes"] }),
  "aws:ec2/routeTableAssociation:RouteTableAssociation": m("ec2", "AssociateRouteTable", { routeTableId: "RouteTableId", subnetId: "SubnetId" }),
  "aws:ec2/securityGroup:SecurityGroup": m("ec2", "CreateSecurityGroup", { description: "Description", name: "GroupName", vpcId: "VpcId" }),
  "aws:ec2/subnet:Subnet": m("ec2", "CreateSubnet", { availabilityZone: "AvailabilityZone", cidrBlock: "CidrBlock", vpcId: "VpcId" }, { later: ["mapPublicIpOnLaunch"] }),
  "aws:ec2/volumeAttachment:VolumeAttachment": m("ec2", "AttachVolume", { deviceName: "Device", instanceId: "InstanceId", volumeId: "VolumeId" }),
  "aws:ec2/vpc:Vpc": m("ec2", "CreateVpc", { cidrBlock: "CidrBlock", instanceTenancy: "InstanceTenancy" }, { later: ["enableDnsHostnames", "enableDnsSupport"] }),
  "aws:ec2/vpcEndpoint:VpcEndpoint": m("ec2", "CreateVpcEndpoint", {
    vpcId: "VpcId", serviceName: "ServiceName", vpcEndpointType: "VpcEndpointType", privateDnsEnabled: "PrivateDnsEnabled",
    "subnetIds[]": "SubnetIds[]", "securityGroupIds[]": "SecurityGroupIds[]", "routeTableIds[]": "RouteTableIds[]", policy: "PolicyDocument",
  }),
  // Pulumi sets an endpoint's policy after creating it, with ModifyVpcEndpoint.
  "aws:ec2/vpcEndpointPolicy:VpcEndpointPolicy": m("ec2", "ModifyVpcEndpoint", { vpcEndpointId: "VpcEndpointId", policy: "PolicyDocument" }),
  "aws:iam/instanceProfile:InstanceProfile": m("iam", "CreateInstanceProfile", { name: "InstanceProfileName", path: "Path" }, { later: ["role"] }),
  "aws:iam/policy:Policy": m("iam", "CreatePolicy", { name: "PolicyName", path: "Path", description: "Description", policy: "PolicyDocument" }),
  "aws:iam/role:Role": m("iam", "CreateRole", { name: "RoleName", path: "Path", description: "Description", assumeRolePolicy: "AssumeRolePolicyDocument", maxSessionDuration: "MaxSessionDuration" }),
  "aws:iam/rolePolicy:RolePolicy": m("iam", "PutRolePolicy", { role: "RoleName", name: "PolicyName", policy: "PolicyDocument" }),
  "aws:iam/rolePolicyAttachment:RolePolicyAttachment": m("iam", "AttachRolePolicy", { role: "RoleName", policyArn: "PolicyArn" }),
  "aws:kms/alias:Alias": m("kms", "CreateAlias", { name: "AliasName", targetKeyId: "TargetKeyId" }),
  "aws:kms/key:Key": m("kms", "CreateKey", { description: "Description", policy: "Policy", keyUsage: "KeyUsage", customerMasterKeySpec: "KeySpec" }, { later: ["enableKeyRotation", "deletionWindowInDays"] }),
  "aws:lb/listener:Listener": m("elbv2", "CreateListener", {
    loadBalancerArn: "LoadBalancerArn", port: "Port", protocol: "Protocol", sslPolicy: "SslPolicy", certificateArn: "Certificates[0].CertificateArn",
    "defaultActions[].type": "DefaultActions[].Type", "defaultActions[].targetGroupArn": "DefaultActions[].TargetGroupArn",
    "defaultActions[].redirect.port": "DefaultActions[].RedirectConfig.Port", "defaultActions[].redirect.protocol": "DefaultActions[].RedirectConfig.Protocol",
    "defaultActions[].redirect.statusCode": "DefaultActions[].RedirectConfig.StatusCode",
  }),
  "aws:lb/loadBalancer:LoadBalancer": m("elbv2", "CreateLoadBalancer", { name: "Name", loadBalancerType: "Type", "subnets[]": "Subnets[]", "securityGroups[]": "SecurityGroups[]", ipAddressType: "IpAddressType" }, { later: ["accessLogs", "dropInvalidHeaderFields", "enableDeletionProtection"] }),
  "aws:lb/targetGroup:TargetGroup": m("elbv2", "CreateTargetGroup", {
    name: "Name", port: "Port", protocol: "Protocol", vpcId: "VpcId", targetType: "TargetType",
    "healthCheck.interval": "HealthCheckIntervalSeconds", "healthCheck.timeout": "HealthCheckTimeoutSeconds",
    "healthCheck.healthyThreshold": "HealthyThresholdCount", "healthCheck.unhealthyThreshold": "UnhealthyThresholdCount",
    "healthCheck.path": "HealthCheckPath", "healthCheck.matcher": "Matcher.HttpCode", "healthCheck.protocol": "HealthCheckProtocol",
  }, { later: ["deregistrationDelay"] }),
  "aws:lb/targetGroupAttachment:TargetGroupAttachment": m("elbv2", "RegisterTargets", { targetGroupArn: "TargetGroupArn", targetId: "Targets[0].Id", port: "Targets[0].Port" }),
  "aws:rds/instance:Instance": m("rds", "CreateDBInstance", {
    identifier: "DBInstanceIdentifier", instanceClass: "DBInstanceClass", engine: "Engine", engineVersion: "EngineVersion",
    allocatedStorage: "AllocatedStorage", storageType: "StorageType", storageEncrypted: "StorageEncrypted", kmsKeyId: "KmsKeyId",
    dbName: "DBName", username: "MasterUsername", manageMasterUserPassword: "ManageMasterUserPassword", multiAz: "MultiAZ",
    dbSubnetGroupName: "DBSubnetGroupName", parameterGroupName: "DBParameterGroupName", "vpcSecurityGroupIds[]": "VpcSecurityGroupIds[]",
    backupRetentionPeriod: "BackupRetentionPeriod", deletionProtection: "DeletionProtection", copyTagsToSnapshot: "CopyTagsToSnapshot",
    autoMinorVersionUpgrade: "AutoMinorVersionUpgrade", "enabledCloudwatchLogsExports[]": "EnableCloudwatchLogsExports[]",
    iamDatabaseAuthenticationEnabled: "EnableIAMDatabaseAuthentication", monitoringInterval: "MonitoringInterval",
    monitoringRoleArn: "MonitoringRoleArn", performanceInsightsEnabled: "EnablePerformanceInsights", publiclyAccessible: "PubliclyAccessible",
  }, { later: ["finalSnapshotIdentifier", "skipFinalSnapshot"] }),
  "aws:rds/parameterGroup:ParameterGroup": m("rds", "CreateDBParameterGroup", { name: "DBParameterGroupName", family: "DBParameterGroupFamily", description: "Description" }, { later: ["parameters"] }),
  "aws:rds/subnetGroup:SubnetGroup": m("rds", "CreateDBSubnetGroup", { name: "DBSubnetGroupName", description: "DBSubnetGroupDescription", "subnetIds[]": "SubnetIds[]" }),
  "aws:budgets/budget:Budget": m("budgets", "CreateBudget", {
    name: "Budget.BudgetName", budgetType: "Budget.BudgetType", timeUnit: "Budget.TimeUnit", limitAmount: "Budget.BudgetLimit.Amount", limitUnit: "Budget.BudgetLimit.Unit",
    "notifications[].comparisonOperator": "NotificationsWithSubscribers[].Notification.ComparisonOperator", "notifications[].threshold": "NotificationsWithSubscribers[].Notification.Threshold",
    "notifications[].thresholdType": "NotificationsWithSubscribers[].Notification.ThresholdType", "notifications[].notificationType": "NotificationsWithSubscribers[].Notification.NotificationType",
    "notifications[].subscriberSnsTopicArns[]": "NotificationsWithSubscribers[].Subscribers[].Address",
  }, { fixed: { AccountId: "123456789012", "NotificationsWithSubscribers[0].Subscribers[0].SubscriptionType": "SNS", "NotificationsWithSubscribers[1].Subscribers[0].SubscriptionType": "SNS" } }),
  "aws:route53/healthCheck:HealthCheck": m("route53", "CreateHealthCheck", {
    type: "HealthCheckConfig.Type", fqdn: "HealthCheckConfig.FullyQualifiedDomainName", port: "HealthCheckConfig.Port",
    resourcePath: "HealthCheckConfig.ResourcePath", requestInterval: "HealthCheckConfig.RequestInterval",
    failureThreshold: "HealthCheckConfig.FailureThreshold", enableSni: "HealthCheckConfig.EnableSNI", measureLatency: "HealthCheckConfig.MeasureLatency",
  }, { fixed: { CallerReference: "pulumi-0" } }),
  "aws:s3/bucket:Bucket": m("s3", "CreateBucket", { bucket: "Bucket", objectLockEnabled: "ObjectLockEnabledForBucket" }),
  "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration": m("s3", "PutBucketLifecycleConfiguration", {
    bucket: "Bucket", "rules[].id": "LifecycleConfiguration.Rules[].ID", "rules[].status": "LifecycleConfiguration.Rules[].Status",
    "rules[].filter.prefix": "LifecycleConfiguration.Rules[].Filter.Prefix",
    "rules[].expiration.days": "LifecycleConfiguration.Rules[].Expiration.Days",
    "rules[].expiration.expiredObjectDeleteMarker": "LifecycleConfiguration.Rules[].Expiration.ExpiredObjectDeleteMarker",
    "rules[].noncurrentVersionExpiration.noncurrentDays": "LifecycleConfiguration.Rules[].NoncurrentVersionExpiration.NoncurrentDays",
    "rules[].abortIncompleteMultipartUpload.daysAfterInitiation": "LifecycleConfiguration.Rules[].AbortIncompleteMultipartUpload.DaysAfterInitiation",
    "rules[].transitions[].days": "LifecycleConfiguration.Rules[].Transitions[].Days",
    "rules[].transitions[].storageClass": "LifecycleConfiguration.Rules[].Transitions[].StorageClass",
  }),
  "aws:s3/bucketLogging:BucketLogging": m("s3", "PutBucketLogging", {
    bucket: "Bucket", targetBucket: "BucketLoggingStatus.LoggingEnabled.TargetBucket", targetPrefix: "BucketLoggingStatus.LoggingEnabled.TargetPrefix",
    "targetObjectKeyFormat.partitionedPrefix.partitionDateSource": "BucketLoggingStatus.LoggingEnabled.TargetObjectKeyFormat.PartitionedPrefix.PartitionDateSource",
  }),
  "aws:s3/bucketObjectLockConfiguration:BucketObjectLockConfiguration": m("s3", "PutObjectLockConfiguration", {
    bucket: "Bucket", objectLockEnabled: "ObjectLockConfiguration.ObjectLockEnabled",
    "rule.defaultRetention.mode": "ObjectLockConfiguration.Rule.DefaultRetention.Mode",
    "rule.defaultRetention.days": "ObjectLockConfiguration.Rule.DefaultRetention.Days",
    "rule.defaultRetention.years": "ObjectLockConfiguration.Rule.DefaultRetention.Years",
  }),
  "aws:s3/bucketObjectv2:BucketObjectv2": m("s3", "PutObject", { bucket: "Bucket", key: "Key", content: "Body", contentType: "ContentType", serverSideEncryption: "ServerSideEncryption", kmsKeyId: "SSEKMSKeyId" }),
  "aws:s3/bucketOwnershipControls:BucketOwnershipControls": m("s3", "PutBucketOwnershipControls", { bucket: "Bucket", "rule.objectOwnership": "OwnershipControls.Rules[0].ObjectOwnership" }),
  "aws:s3/bucketPolicy:BucketPolicy": m("s3", "PutBucketPolicy", { bucket: "Bucket", policy: "Policy" }),
  "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock": m("s3", "PutPublicAccessBlock", {
    bucket: "Bucket", blockPublicAcls: "PublicAccessBlockConfiguration.BlockPublicAcls", blockPublicPolicy: "PublicAccessBlockConfiguration.BlockPublicPolicy",
    ignorePublicAcls: "PublicAccessBlockConfiguration.IgnorePublicAcls", restrictPublicBuckets: "PublicAccessBlockConfiguration.RestrictPublicBuckets",
  }),
  "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration": m("s3", "PutBucketEncryption", {
    bucket: "Bucket",
    "rules[].applyServerSideEncryptionByDefault.sseAlgorithm": "ServerSideEncryptionConfiguration.Rules[].ApplyServerSideEncryptionByDefault.SSEAlgorithm",
    "rules[].applyServerSideEncryptionByDefault.kmsMasterKeyId": "ServerSideEncryptionConfiguration.Rules[].ApplyServerSideEncryptionByDefault.KMSMasterKeyID",
    "rules[].bucketKeyEnabled": "ServerSideEncryptionConfiguration.Rules[].BucketKeyEnabled",
  }),
  "aws:s3/bucketVersioning:BucketVersioning": m("s3", "PutBucketVersioning", { bucket: "Bucket", "versioningConfiguration.status": "VersioningConfiguration.Status" }),
  "aws:sns/topic:Topic": m("sns", "CreateTopic", { name: "Name", displayName: "Attributes.DisplayName", kmsMasterKeyId: "Attributes.KmsMasterKeyId", policy: "Attributes.Policy" }),
  "aws:sns/topicPolicy:TopicPolicy": m("sns", "SetTopicAttributes", { arn: "TopicArn", policy: "AttributeValue" }, { fixed: { AttributeName: "Policy" } }),
  "aws:sns/topicSubscription:TopicSubscription": m("sns", "Subscribe", { topic: "TopicArn", protocol: "Protocol", endpoint: "Endpoint" }),
  "aws:ssm/document:Document": m("ssm", "CreateDocument", { name: "Name", content: "Content", documentType: "DocumentType", documentFormat: "DocumentFormat", targetType: "TargetType", versionName: "VersionName" }),
  "aws:ssm/parameter:Parameter": m("ssm", "PutParameter", { name: "Name", description: "Description", value: "Value", type: "Type", keyId: "KeyId", tier: "Tier", allowedPattern: "AllowedPattern", dataType: "DataType" }),
  "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule": m("ec2", "AuthorizeSecurityGroupEgress", {
    securityGroupId: "GroupId", ipProtocol: "IpPermissions[0].IpProtocol", fromPort: "IpPermissions[0].FromPort", toPort: "IpPermissions[0].ToPort",
    cidrIpv4: "IpPermissions[0].IpRanges[0].CidrIp", description: "IpPermissions[0].IpRanges[0].Description",
    referencedSecurityGroupId: "IpPermissions[0].UserIdGroupPairs[0].GroupId", prefixListId: "IpPermissions[0].PrefixListIds[0].PrefixListId",
  }),
  "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule": m("ec2", "AuthorizeSecurityGroupIngress", {
    securityGroupId: "GroupId", ipProtocol: "IpPermissions[0].IpProtocol", fromPort: "IpPermissions[0].FromPort", toPort: "IpPermissions[0].ToPort",
    cidrIpv4: "IpPermissions[0].IpRanges[0].CidrIp", description: "IpPermissions[0].IpRanges[0].Description",
    referencedSecurityGroupId: "IpPermissions[0].UserIdGroupPairs[0].GroupId", prefixListId: "IpPermissions[0].PrefixListIds[0].PrefixListId",
  }),
};
